// Types for `cellgate/redis`.
import type { Costs, Decision, Key, OnFull, PolicyDecision, PolicyEntry } from './index';

/** What decides when Redis cannot be asked in time: core's `OutagePolicy`. */
export type OutagePolicy = 'fallback' | 'open' | 'closed';

/**
 * The user's own client: an ioredis client (`Redis` or `Cluster`: it has `evalshaBuffer`), or
 * a node-redis v4+ client (`createClient()`, connected: it has `sendCommand`).
 */
export type RedisClient =
  | { evalshaBuffer(...args: any[]): Promise<unknown>; evalBuffer(...args: any[]): Promise<unknown> }
  | { sendCommand(args: any[], options?: any): Promise<unknown> };

export interface RedisLimiterOptions {
  /** Your client (its pool, TLS, auth). */
  client: RedisClient;
  /** Put before every key (default 'cellgate:'); no braces (the user key is the Cluster hash tag). */
  prefix?: string;
  /** 'fallback' (the default: this process's own limiter decides, reason 'fallback'), 'open' (admit, 'failed_open') or 'closed' (deny, 'failed_closed', answered 503). */
  outage?: OutagePolicy;
  /** The longest one decision waits for Redis, in ms (default 50); past it the outage policy decides. */
  timeoutMs?: number;
  /** After a failure, decisions skip Redis this long (ms, default 1000), then try it again. */
  retryIntervalMs?: number;
  /** 16 bytes shared by every host: user keys are stored as their keyed hash (SipHash-2-4), not in clear. */
  keySecret?: Uint8Array | string;
  /** Milliseconds a record is kept after its buckets are full again (default 0). */
  expiryGraceMs?: number;
  /** The retryAfterMs of an outage 'closed' denial (default 1000). */
  outageRetryAfterMs?: number;
  /** The fallback limiter's table size (as Limiter's). */
  maxKeys?: number;
  /** The fallback limiter's answer to a full table. */
  onFull?: OnFull;
  /** Milliseconds a denial blocks its key for (default 0: never), as Limiter's: the script writes the block into the record. */
  blockMs?: number;
  /** For a rate string: as Limiter's options. */
  burst?: number;
  algorithm?: 'gcra' | 'token_bucket';
  refill?: 'greedy' | 'interval';
  name?: string;
}

/** An explicit time instead of Redis's clock (tests, replays). */
export interface CallOptions {
  nowNs?: bigint | number;
}

/** Decisions per path, since the limiter was built. */
export interface RedisStats {
  /** Decided by Redis (reason 'limit'). */
  remote: number;
  failedOpen: number;
  failedClosed: number;
  fallback: number;
  /** Calls to Redis that failed (an error, a timeout, a reply core refused). */
  errors: number;
  /** Decisions that skipped Redis within retryIntervalMs of a failure. */
  skipped: number;
  /** Times the script was sent in full after NOSCRIPT (a restart, a failover, SCRIPT FLUSH). */
  scriptLoads: number;
}

/** A cost: a number, `{ cost }` (as Limiter), or per dimension (as Policy). */
export type RedisCosts = Costs | { cost?: number };

export declare class RedisReservation {
  private constructor();
  readonly estimate: Costs | undefined;
  /** Whether it has not been settled yet. */
  readonly pending: boolean;
  /** Whether Redis holds its charge (not the outage policy). */
  readonly remote: boolean;
  settle(actual?: RedisCosts, options?: CallOptions): Promise<Decision>;
}


/**
 * The keyed limiter with its buckets in Redis: the decisions of Limiter (built from a rate
 * string: `Decision`s) or of Policy (built from entries: `PolicyDecision`s), async.
 */
export interface RedisLimiter<D extends Decision = Decision> {
  /** 'ioredis' or 'node-redis'. */
  readonly clientKind: 'ioredis' | 'node-redis';
  readonly rate: string;
  readonly outage: OutagePolicy;
  readonly dimensions: string[];
  readonly names: string[];
  check(key: Key, costs?: RedisCosts, options?: CallOptions): Promise<D>;
  peek(key: Key, costs?: RedisCosts, options?: CallOptions): Promise<D>;
  force(key: Key, costs?: RedisCosts, options?: CallOptions): Promise<D>;
  refund(key: Key, costs?: RedisCosts, options?: CallOptions): Promise<D>;
  reset(key: Key, options?: CallOptions): Promise<D>;
  apply(op: 'check' | 'peek' | 'force' | 'refund' | 'reset', key: Key, costs?: RedisCosts, options?: CallOptions): Promise<D>;
  reserve(key: Key, estimate?: RedisCosts, options?: CallOptions): Promise<{ decision: D; reservation: RedisReservation | null }>;
  settle(reservation: RedisReservation, actual?: RedisCosts, options?: CallOptions): Promise<D>;
  stats(): RedisStats;
}

export interface RedisLimiterConstructor {
  /** As `new Limiter(rate, options)`, with the Redis options. */
  new (limits: string, options: RedisLimiterOptions): RedisLimiter<Decision>;
  /** As `new Policy(entries, options)`, with the Redis options. */
  new (limits: readonly PolicyEntry[], options: RedisLimiterOptions): RedisLimiter<PolicyDecision>;
  readonly prototype: RedisLimiter;
}

export declare const RedisLimiter: RedisLimiterConstructor;

/** The Lua script (EVAL) and its SHA1 (EVALSHA), core's. */
export declare const SCRIPT: string;
export declare const SCRIPT_SHA1: string;
export default RedisLimiter;
export type { Decision };
