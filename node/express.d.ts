// Types for `cellgate/express`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Costs, Decision, Limiter, Policy, PolicyDecision } from './index';

type Awaitable<T> = T | Promise<T>;

export interface RateLimitOptions<Req = IncomingMessage, Res = ServerResponse> {
  /** A Limiter, a Policy, or a rate string ('100/minute') for a new Limiter. */
  limiter: Limiter | Policy | string;
  /** The request's key (default: `req.ip`, else the socket's address). */
  key?: (req: Req, res: Res) => Awaitable<string | Uint8Array>;
  /** The request's cost (default 1; for a Policy, its costs). */
  cost?: (req: Req, res: Res) => Awaitable<number | Costs>;
  /** The IPv6 prefix length the default key groups addresses by (default 56). */
  ipv6PrefixLen?: number;
  /** True lets the request through unchecked. */
  skip?: (req: Req, res: Res) => Awaitable<boolean>;
  /** Header style (default 'ietf'); false sends none but Retry-After on a denial. */
  headers?: 'ietf' | 'legacy' | 'legacy-epoch' | false;
  /** The status of a denial (default 429). */
  statusCode?: number;
  /**
   * Answers a denial instead of the default JSON (`decision` is null when the key table is
   * full). A denial never reaches the route: when it returns (or the promise it returns
   * settles) without having sent a response, or throws, the default answer is sent (a throw
   * is also a process warning). Its `next(error)` goes to the error handlers; `next()`,
   * `next('route')` and `next('router')` do nothing. A callback that answers later (a
   * `res.sendFile`, say) must return a promise that settles once it has.
   */
  onLimited?: (req: Req, res: Res, next: (error?: unknown) => void, decision: Decision | PolicyDecision | null) => unknown;
}

/** The middleware: sets `req.rateLimit`, the headers, and answers denials with 429 and JSON. */
export declare function rateLimit<Req = IncomingMessage, Res = ServerResponse>(
  options: RateLimitOptions<Req, Res>,
): (req: Req, res: Res, next: (error?: unknown) => void) => void;
export default rateLimit;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The decision for this request (null when the key table was full). */
      rateLimit?: Decision | PolicyDecision | null;
    }
  }
}
