// Types for `cellgate/fastify`.
import type { Costs, Decision, Limiter, Policy, PolicyDecision } from './index';

type Awaitable<T> = T | Promise<T>;

export interface CellgateFastifyOptions {
  /** A Limiter, a Policy, or a rate string ('100/minute') for a new Limiter. */
  limiter: Limiter | Policy | string;
  /** The request's key (default: `request.ip`). */
  key?: (request: any, reply: any) => Awaitable<string | Uint8Array>;
  /** The request's cost (default 1; for a Policy, its costs). */
  cost?: (request: any, reply: any) => Awaitable<number | Costs>;
  /** The IPv6 prefix length the default key groups addresses by (default 56). */
  ipv6PrefixLen?: number;
  /** True lets the request through unchecked. */
  skip?: (request: any, reply: any) => Awaitable<boolean>;
  /** Header style (default 'ietf'); false sends none but Retry-After on a denial. */
  headers?: 'ietf' | 'legacy' | 'legacy-epoch' | false;
  /** The status of a denial (default 429). */
  statusCode?: number;
  /**
   * Answers a denial instead of the default JSON (`decision` is null when the key table is
   * full); it is awaited. A denial never reaches the handler: when it neither calls
   * `reply.send` (directly or through `redirect()` and the like) nor hijacks the reply, or
   * when it throws (logged with `request.log`), the default answer is sent.
   */
  onLimited?: (request: any, reply: any, decision: Decision | PolicyDecision | null) => unknown;
}

/** The plugin: an onRequest hook that sets `request.rateLimit` and answers denials with 429 and JSON. */
declare function cellgate(instance: any, options: CellgateFastifyOptions, done: (error?: Error) => void): void;
export { cellgate };
export default cellgate;
