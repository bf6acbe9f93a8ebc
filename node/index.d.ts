// Types for the `cellgate` package (hand-written; the public contract of lib/index.js).

/** A key: a string (its UTF-8 bytes), a Buffer or a Uint8Array (its bytes). */
export type Key = string | Uint8Array;

/**
 * Why a decision was made: 'limit' (the key's buckets decided), 'table_full' (a new key found
 * no room in the table: denied, with a wait, under `onFull: 'deny'`) or 'untracked' (no room,
 * admitted without being stored, under `onFull: 'allowUntracked'`); for a `RedisLimiter`
 * (`cellgate/redis`) that could not ask Redis, its outage policy: 'fallback' (this process's
 * own limiter decided), 'failed_open' (admitted), 'failed_closed' (denied: answered 503).
 * Core's `Reason`.
 */
export type Reason = 'limit' | 'table_full' | 'untracked' | 'failed_open' | 'failed_closed' | 'fallback';

/** What a limiter does with a new key when its table has no room: core's `OnFull`. */
export type OnFull = 'deny' | 'allowUntracked';

/**
 * What a limiter answered, the same fields on allow and deny. Times are milliseconds from
 * the operation (fractions carry the exact nanoseconds, up to 2^53 ns).
 */
export declare class Decision {
  protected constructor();
  /** Whether the cost was admitted (for `force`: whether it fitted without debt). */
  readonly allowed: boolean;
  /** Why: the buckets ('limit'), or a full table ('table_full', 'untracked'). */
  readonly reason: Reason;
  /** The burst: the most cost ever admitted at once. */
  readonly limit: number;
  /** Cost that could be admitted right now, after this operation (0 in debt). */
  readonly remaining: number;
  /** 0 when allowed; the exact wait until the same request is admitted; `Infinity` when it never can be. */
  readonly retryAfterMs: number;
  /** Milliseconds until the bucket is full again. */
  readonly resetAfterMs: number;
}

/** One entry's decision inside a policy decision. */
export interface EntryDecision {
  readonly name: string;
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly resetAfterMs: number;
}

/** A policy's decision: the binding entry's numbers, its name, and every entry's decision. */
export declare class PolicyDecision extends Decision {
  /** The binding entry: when denied, the refusing one with the longest wait; when allowed, the one with the least remaining. */
  readonly binding: string;
  /** Every entry's decision, in entry order. */
  readonly decisions: readonly EntryDecision[];
}

/**
 * A clock that moves only when told to, for tests; limiters built with it read its time.
 * **`acquire` on such a limiter waits until someone advances the clock**: give it a
 * `timeoutMs`, which also ends the wait in real time.
 */
export declare class ManualClock {
  /** @param startNs the start time in nanoseconds (default 0) */
  constructor(startNs?: number | bigint);
  /** Moves time forward by whole milliseconds (saturating at 2^64 - 1 ns). */
  advance(ms: number): void;
  /** Moves time forward by nanoseconds (saturating at 2^64 - 1). */
  advanceNs(ns: number | bigint): void;
  /** Sets the time; it may go backwards (limiters treat that as no time passing). */
  setNs(ns: number | bigint): void;
  /** The time in nanoseconds. */
  nowNs(): bigint;
}

export interface LimiterOptions {
  /** The most cost admitted at once (default: the rate's count). One quota only. */
  burst?: number;
  /** 'gcra' (the default) or 'token_bucket' (with greedy refill it decides as GCRA). */
  algorithm?: 'gcra' | 'token_bucket';
  /** 'greedy' (continuous, the default) or 'interval' (the rate at every period boundary; token bucket only). */
  refill?: 'greedy' | 'interval';
  /** Keys the table is sized for (default 100 000, at most 2^27 = 134 217 728: core's bounds); memory is allocated once. */
  maxKeys?: number;
  /** A new key that finds the table full: 'deny' (the default; reason 'table_full') or 'allowUntracked' (admitted, not stored; reason 'untracked'). */
  onFull?: OnFull;
  /** A ManualClock; the default is the process's monotonic clock. Not with `store`. */
  clock?: ManualClock;
  /** A SharedMemory: one table for every process of the host (default: this process's own). */
  store?: SharedMemory;
  /** The policy name in headers (default: core's name for the quota, '100-in-1min'). One quota only. */
  name?: string;
  /**
   * Milliseconds a denial blocks its key for (default 0: never; rate-limiter-flexible's
   * `blockDuration`): every request of the key is denied meanwhile, the denials it answers do
   * not extend it, and the bucket then refills from empty.
   */
  blockMs?: number;
}

export interface CostOptions {
  /** An integer from 0 to 2^53 - 1 (default 1, core's DEFAULT_COST). */
  cost?: number;
}

export interface AcquireOptions {
  /**
   * Give up (rejecting with reason 'timeout') as soon as the wait would pass this many
   * milliseconds on the limiter's clock, or once they have passed in real time, whichever
   * comes first (default Infinity). **With a ManualClock and no timeout, the wait lasts until
   * someone advances the clock far enough.**
   */
  timeoutMs?: number;
  /** Give up (rejecting) when it aborts. */
  signal?: AbortSignal;
}

/** Keyed rate limiting: one bucket per key, decisions exact to the nanosecond. */
export declare class Limiter {
  /**
   * @param rate a rate string in the notation of Python's `limits`: '100/minute', '10 per
   *   second', '500/7 days'; several ('10/s; 1000/day') are decided all-or-nothing, each
   *   shown in headers under core's name for it ('10-in-1s', '1000-in-1d').
   * @throws TypeError or RangeError for an invalid rate or option (a RangeError naming
   *   `rate` for two quotas with the same header name, such as '10/s; 10/second'). A full
   *   table never throws: it is a decision with `reason: 'table_full'`.
   */
  constructor(rate: string, options?: LimiterOptions);
  /** The quota(s), written back as a rate string. */
  readonly rate: string;
  /** Milliseconds a denial blocks its key for (`options.blockMs`; 0: never). */
  readonly blockMs: number;
  /** Tests and consumes `cost` for `key` atomically; a denial consumes nothing. */
  check(key: Key, options?: CostOptions): Decision;
  /** The decision `check` would make, consuming nothing. */
  peek(key: Key, options?: CostOptions): Decision;
  /** Consumes whether or not it fits (into debt); `allowed` says whether it fitted. */
  force(key: Key, options?: CostOptions): Decision;
  /** Gives cost back, never above full; `allowed` says whether the bucket is out of debt. */
  refund(key: Key, options?: CostOptions): Decision;
  /** Makes `key`'s bucket full. */
  reset(key: Key): void;
  /**
   * Resolves once admitted, waiting as `retryAfterMs` says (no polling); rejects with
   * RateLimitError. **With a ManualClock and no `timeoutMs`, it waits until someone advances
   * the clock.**
   */
  acquire(key: Key, options?: CostOptions & AcquireOptions): Promise<Decision>;
  /**
   * Table counters (a relaxed snapshot): the first quota's at the top level, and every
   * quota's, in quota order (`'10/s; 1000/day'` has two tables), in `quotas`.
   */
  stats(): TableStats & { slots: number; readonly quotas: Array<TableStats & { readonly name: string }> };
}

/** A table's counters: `rejectedFull` new keys denied for a full table, `admittedUntracked` admitted untracked. */
export interface TableStats {
  readonly liveKeys: number;
  readonly reclaimed: number;
  readonly rejectedFull: number;
  readonly admittedUntracked: number;
}

export interface PolicyEntry {
  /** The name in headers and decisions (non-empty printable ASCII, distinct: core's rule). */
  name: string;
  /** One rate string, such as '60/minute'. */
  rate: string;
  /** The burst (default: the rate's count). */
  burst?: number;
  /** The dimension this entry is charged (default 'requests'). */
  dimension?: string;
}

/**
 * Costs per dimension: an object by dimension name, an array in dimension order, or a number
 * for one dimension. Core's rule completes them: with one dimension a cost not named is 1;
 * with several, every dimension must be named (0 is a cost), else a TypeError naming the
 * missing one (`costs.tokens`). For `settle`, a dimension not named keeps its estimate.
 */
export type Costs = Record<string, number | undefined> | readonly (number | undefined)[] | number;

/** An admitted reservation, to settle once with the actual costs. */
export declare class Reservation {
  private constructor();
  readonly policy: Policy;
  readonly estimate: Costs;
  /** Whether it is not settled yet. */
  readonly pending: boolean;
  /** `policy.settle(this, actual)`. */
  settle(actual?: Costs): PolicyDecision;
}

/** Several quotas over named dimensions, decided all-or-nothing per key, with reserve and settle. */
export declare class Policy {
  /** @throws TypeError or RangeError for an invalid entry or option (`entries[2].name` for a name repeated) */
  constructor(entries: readonly PolicyEntry[], options?: { maxKeys?: number; onFull?: OnFull; clock?: ManualClock; store?: SharedMemory; blockMs?: number });
  /** Milliseconds a denial blocks its key for (0: never): each quota that denied is blocked. */
  readonly blockMs: number;
  /** Dimension names, in the order cost arrays use. */
  readonly dimensions: string[];
  /** Entry names, in entry order. */
  readonly names: string[];
  check(key: Key, costs?: Costs): PolicyDecision;
  peek(key: Key, costs?: Costs): PolicyDecision;
  force(key: Key, costs?: Costs): PolicyDecision;
  refund(key: Key, costs?: Costs): PolicyDecision;
  reset(key: Key): void;
  /** A check of the estimate that, when admitted, returns a reservation (null when refused: nothing charged). */
  reserve(key: Key, estimate?: Costs): { decision: PolicyDecision; reservation: Reservation | null };
  /** Refunds what was not used and charges what exceeds the estimate (into debt if need be); a dimension `actual` does not name keeps its estimate. */
  settle(reservation: Reservation, actual?: Costs): PolicyDecision;
  /** As `Limiter#acquire`. **With a ManualClock and no `timeoutMs`, it waits until someone advances the clock.** */
  acquire(key: Key, options?: { costs?: Costs } & AcquireOptions): Promise<PolicyDecision>;
  /** Each entry's table counters, in entry order. */
  stats(): Array<TableStats & { readonly name: string }>;
}

/**
 * A header style: 'ietf' (RateLimit-Policy and RateLimit, draft-10; the default), 'legacy'
 * (X-RateLimit-*, reset in seconds from now), 'legacy-epoch' (reset as a Unix time), or a
 * per-dimension style of LLM APIs, one header per quota and field: 'anthropic'
 * (`anthropic-ratelimit-{name}-limit`, `-remaining`, `-reset` as an RFC 3339 time) or
 * 'openai' (`x-ratelimit-limit-{name}`, `x-ratelimit-remaining-{name}`,
 * `x-ratelimit-reset-{name}` as '6m0s'); each adds `retry-after` on a denial. 'draft-6' and
 * 'draft-7': the older drafts' shapes express-rate-limit sends (`RateLimit-Policy: 100;w=60`
 * with `RateLimit-Limit`/`-Remaining`/`-Reset`, or `RateLimit: limit=100, remaining=99, reset=60`).
 */
export type HeaderStyle = 'ietf' | 'legacy' | 'legacy-epoch' | 'anthropic' | 'openai' | 'draft-6' | 'draft-7';

export interface HeaderOptions {
  /** The style (default 'ietf'). */
  style?: HeaderStyle;
  /** The Unix time in seconds for 'legacy-epoch' and 'anthropic' (default: now). */
  nowUnixS?: number;
}

/**
 * The rate-limit headers for a decision (plus Retry-After on a denial), rendered by the core.
 * @throws RangeError for a per-dimension style when a quota's name cannot be part of a header
 *   name (only ASCII letters, digits, '-' and '_'), naming the entry
 */
export declare function headers(decision: Decision, options?: HeaderOptions): Record<string, string>;

/** The JSON body of a 429: `{"error":"rate_limited","retry_after":N}` (N as Retry-After, null for never). */
export declare function limitedBody(decision: Decision): string;

/**
 * The key for a client's IP address: one per IPv4 address and per IPv6 prefix of
 * `ipv6PrefixLen` bits (default 56), the same for every spelling of the address.
 * @throws RangeError for text that is not an address
 */
export declare function clientKey(address: string, options?: { ipv6PrefixLen?: number }): Buffer;

/** `acquire` gave up: 'timeout', 'never' (cost above the burst) or 'aborted' (cause: the signal's reason). */
export declare class RateLimitError extends Error {
  readonly code: 'ERR_CELLGATE_TIMEOUT' | 'ERR_CELLGATE_NEVER' | 'ERR_CELLGATE_ABORTED';
  readonly reason: 'timeout' | 'never' | 'aborted';
  readonly decision: Decision | undefined;
}

/**
 * A store whose tables live in a file mapping (usually under /dev/shm) shared by every process
 * of the host, in any runtime: `new Limiter('100/minute', { store: new SharedMemory('/dev/shm/app') })`
 * in each cluster worker is 100 per minute for the host. The first process creates the file
 * (0600, or 0660 with `access: 'group'`); every process must configure the same quotas, refill
 * and `maxKeys`. The file persists until `SharedMemory.remove(path)`; it is never resized.
 * Whoever can write the file can reset anyone's limit.
 */
export declare class SharedMemory {
  /** @throws TypeError (ERR_INVALID_ARG_TYPE) for an empty path or an unknown option */
  constructor(path: string, options?: { access?: 'owner' | 'group'; allowOtherOwner?: boolean });
  readonly path: string;
  readonly access: 'owner' | 'group';
  readonly allowOtherOwner: boolean;
  /** Removes the table file: true if there was one. @throws SharedMemoryError */
  static remove(path: string): boolean;
}

/** A shared-memory table could not be opened or removed; the message starts with the path. */
export declare class SharedMemoryError extends Error {
  readonly code:
    | 'ERR_CELLGATE_SHARED_CONFIG_MISMATCH'
    | 'ERR_CELLGATE_SHARED_BAD_FILE'
    | 'ERR_CELLGATE_SHARED_VERSION'
    | 'ERR_CELLGATE_SHARED_PERMISSION'
    | 'ERR_CELLGATE_SHARED_UNSUPPORTED'
    | 'ERR_CELLGATE_SHARED_IO';
}

declare const cellgate: {
  Limiter: typeof Limiter;
  Policy: typeof Policy;
  Reservation: typeof Reservation;
  ManualClock: typeof ManualClock;
  Decision: typeof Decision;
  headers: typeof headers;
  limitedBody: typeof limitedBody;
  clientKey: typeof clientKey;
  RateLimitError: typeof RateLimitError;
  SharedMemory: typeof SharedMemory;
  SharedMemoryError: typeof SharedMemoryError;
};
export default cellgate;
