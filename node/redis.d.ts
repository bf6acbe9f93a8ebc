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

export declare class RedisReservation {
  private constructor();
  readonly estimate: Costs | undefined;
  /** Whether it has not been settled yet. */
  readonly pending: boolean;
  /** Whether Redis holds its charge (not the outage policy). */
  readonly remote: boolean;
  settle(actual?: Costs, options?: CallOptions): Promise<PolicyDecision>;
}

export type RedisCosts = Costs | { cost?: number };

/** The keyed limiter with its buckets in Redis: the decisions of Limiter / Policy, async. */
export declare class RedisLimiter {
  /** `limits`: a rate string (as Limiter) or entries (as Policy). */
  constructor(limits: string | readonly PolicyEntry[], options: RedisLimiterOptions);
  /** 'ioredis' or 'node-redis'. */
  readonly clientKind: 'ioredis' | 'node-redis';
  readonly rate: string;
  readonly outage: OutagePolicy;
  readonly dimensions: string[];
  readonly names: string[];
  check(key: Key, costs?: RedisCosts, options?: CallOptions): Promise<PolicyDecision>;
  peek(key: Key, costs?: RedisCosts, options?: CallOptions): Promise<PolicyDecision>;
  force(key: Key, costs?: RedisCosts, options?: CallOptions): Promise<PolicyDecision>;
  refund(key: Key, costs?: RedisCosts, options?: CallOptions): Promise<PolicyDecision>;
  reset(key: Key, options?: CallOptions): Promise<PolicyDecision>;
  apply(op: 'check' | 'peek' | 'force' | 'refund' | 'reset', key: Key, costs?: RedisCosts, options?: CallOptions): Promise<PolicyDecision>;
  reserve(key: Key, estimate?: RedisCosts, options?: CallOptions): Promise<{ decision: PolicyDecision; reservation: RedisReservation | null }>;
  settle(reservation: RedisReservation, actual?: RedisCosts, options?: CallOptions): Promise<PolicyDecision>;
  stats(): RedisStats;
}

/** The Lua script (EVAL) and its SHA1 (EVALSHA), core's. */
export declare const SCRIPT: string;
export declare const SCRIPT_SHA1: string;
export default RedisLimiter;
export type { Decision };
