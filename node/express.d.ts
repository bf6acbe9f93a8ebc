// Types for `cellgate/express`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Costs, Decision, HeaderStyle, Limiter, Policy, PolicyDecision } from './index';
import type { RedisLimiter } from './redis';

type Awaitable<T> = T | Promise<T>;

export interface RateLimitOptions<Req = IncomingMessage, Res = ServerResponse> {
  /**
   * A Limiter, a Policy, a RedisLimiter (awaited), a rate string ('100/minute') for a new
   * Limiter, or a function choosing the request's limiter (per user, per plan; a return that
   * is no limiter is answered 500 and warned about once).
   */
  limiter: Limiter | Policy | RedisLimiter | string | ((req: Req, res: Res) => Awaitable<Limiter | Policy | RedisLimiter>);
  /** The request's key (default: `req.ip`, else the socket's address). */
  key?: (req: Req, res: Res) => Awaitable<string | Uint8Array>;
  /** The request's cost (default 1; for a Policy, its costs). */
  cost?: (req: Req, res: Res) => Awaitable<number | Costs>;
  /** The IPv6 prefix length the default key groups addresses by (default 56). */
  ipv6PrefixLen?: number;
  /** True lets the request through unchecked. */
  skip?: (req: Req, res: Res) => Awaitable<boolean>;
  /**
   * Header style (default 'ietf'; 'anthropic' and 'openai' are the per-dimension styles);
   * false sends none but Retry-After on a denial.
   */
  headers?: HeaderStyle | false;
  /** The status of a denial (default 429). */
  statusCode?: number;
  /**
   * Answers a denial instead of the default JSON (a full key table is a denial like any
   * other: `decision.reason` is 'table_full'). A denial never reaches the route: when it returns (or the promise it returns
   * settles) without having sent a response, or throws, the default answer is sent (a throw
   * is also a process warning). Its `next(error)` goes to the error handlers; `next()`,
   * `next('route')` and `next('router')` do nothing. A callback that answers later (a
   * `res.sendFile`, say) must return a promise that settles once it has.
   */
  onLimited?: (req: Req, res: Res, next: (error?: unknown) => void, decision: Decision | PolicyDecision) => unknown;
  /**
   * Which admitted requests keep their cost once the status is known: 'all' (default),
   * 'failed' (status >= 400: the login brute-force recipe) or 'successful' (< 400); the
   * others are refunded on the same limiter after the response.
   */
  count?: 'all' | 'failed' | 'successful';
  /** Replaces `count`: true keeps the request's cost (giving both is a TypeError). */
  countWhen?: (statusCode: number, req: Req, res: Res) => boolean;
  /** Keys (an IP entry as the default key makes it) or a function: allowed requests pass unlimited, without headers. */
  allowList?: readonly string[] | ((req: Req, key: string | Uint8Array) => Awaitable<boolean>);
  /** Only these methods are limited (any case). */
  methods?: readonly string[];
  /** Called on every denial before it is answered (metrics, logs); its errors are warnings. */
  onExceeded?: (req: Req, decision: Decision | PolicyDecision) => unknown;
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
      /** The decision for this request. */
      rateLimit?: Decision | PolicyDecision;
    }
  }
}
