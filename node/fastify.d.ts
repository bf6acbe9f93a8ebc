// Types for `cellgate/fastify`.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Costs, Decision, HeaderStyle, Limiter, Policy, PolicyDecision } from './index';
import type { RedisLimiter } from './redis';

type Awaitable<T> = T | Promise<T>;

export interface CellgateFastifyOptions {
  /**
   * A Limiter, a Policy, a RedisLimiter (awaited), a rate string ('100/minute') for a new
   * Limiter, or a function choosing the request's limiter.
   */
  limiter: Limiter | Policy | RedisLimiter | string | ((request: FastifyRequest, reply: FastifyReply) => Awaitable<Limiter | Policy | RedisLimiter>);
  /** The request's key (default: `request.ip`). */
  key?: (request: FastifyRequest, reply: FastifyReply) => Awaitable<string | Uint8Array>;
  /** The request's cost (default 1; for a Policy, its costs). */
  cost?: (request: FastifyRequest, reply: FastifyReply) => Awaitable<number | Costs>;
  /** The IPv6 prefix length the default key groups addresses by (default 56). */
  ipv6PrefixLen?: number;
  /** True lets the request through unchecked. */
  skip?: (request: FastifyRequest, reply: FastifyReply) => Awaitable<boolean>;
  /**
   * Header style (default 'ietf'; 'anthropic' and 'openai' are the per-dimension styles);
   * false sends none but Retry-After on a denial.
   */
  headers?: HeaderStyle | false;
  /** The status of a denial (default 429). */
  statusCode?: number;
  /**
   * Answers a denial instead of the default JSON (a full key table is a denial like any
   * other: `decision.reason` is 'table_full'); it is awaited. A denial never reaches the handler: when it neither calls
   * `reply.send` (directly or through `redirect()` and the like) nor hijacks the reply, or
   * when it throws (logged with `request.log`), the default answer is sent.
   */
  onLimited?: (request: FastifyRequest, reply: FastifyReply, decision: Decision | PolicyDecision) => unknown;
  /**
   * Which admitted requests keep their cost once the status is known: 'all' (default),
   * 'failed' (status >= 400: the login brute-force recipe) or 'successful' (< 400); the
   * others are refunded on the same limiter after the response.
   */
  count?: 'all' | 'failed' | 'successful';
  /** Replaces `count`: true keeps the request's cost (giving both is a TypeError). */
  countWhen?: (statusCode: number, req: FastifyRequest, reply: FastifyReply) => boolean;
  /** Keys (an IP entry as the default key makes it) or a function: allowed requests pass unlimited, without headers. */
  allowList?: readonly string[] | ((request: FastifyRequest, key: string | Uint8Array) => Awaitable<boolean>);
  /** Only these methods are limited (any case). */
  methods?: readonly string[];
  /** Called on every denial before it is answered (metrics, logs); its errors are warnings. */
  onExceeded?: (request: FastifyRequest, decision: Decision | PolicyDecision) => unknown;
  /** The hook that checks (default 'onRequest'; 'preHandler' to key by what authentication set). */
  hook?: 'onRequest' | 'preParsing' | 'preValidation' | 'preHandler';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's options over the registration's (not `hook`), or false: not limited. */
    rateLimit?: Partial<Omit<CellgateFastifyOptions, 'hook'>> | false;
  }
}

/** The plugin: an onRequest hook that sets `request.rateLimit` and answers denials with 429 and JSON. */
declare function cellgate(instance: FastifyInstance, options: CellgateFastifyOptions, done: (error?: Error) => void): void;
export { cellgate };
export default cellgate;
