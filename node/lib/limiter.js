'use strict';
// Limiter: Node's idiom (a rate string and options) over core's Limiter (node/src/limiter.rs),
// which holds every rule: names, dimensions, maxKeys bounds, refill, the full-table answer.

const { native, LAYOUT, OPS, sharedArray } = require('./boundary');
const { argTypeError, fromNative } = require('./errors');
const {
  singleDecision, severalDecision, shapedHeaders, headerSource, applyRendering, kCheckWithHeaders,
} = require('./decision');
const { nativeClock } = require('./clock');
const { acquireWith } = require('./wait');
const validate = require('./validate');
const { storeSettings } = require('./shared_memory');

const { COSTS, OP, COUNT, COST_NOT_GIVEN } = LAYOUT;
// Core's default maxKeys (DEFAULT_MAX_KEYS), the same in every runtime.
const { defaultMaxKeys: DEFAULT_MAX_KEYS } = native.configLimits();
const ON_FULL = ['deny', 'allowUntracked'];

/**
 * The options every limiter shares (`maxKeys`, `onFull`, `clock`), checked for their types:
 * core checks the values. `argument` names the quotas' argument in errors about the list.
 */
function limiterOptions(opts, refill, argument) {
  const maxKeys = opts.maxKeys === undefined ? DEFAULT_MAX_KEYS : opts.maxKeys;
  if (typeof maxKeys !== 'number') throw argTypeError('options.maxKeys', 'a number', maxKeys);
  const onFull = opts.onFull === undefined ? 'deny' : validate.oneOf(opts.onFull, 'options.onFull', ON_FULL);
  return { refill, maxKeys, onFull, argument };
}

// The longest block, in milliseconds: core's block is u64 nanoseconds.
const MAX_BLOCK_MS = 18446744073709;

/**
 * `options.blockMs`: how long a denial blocks its key (0, the default: never), in every
 * limiter (in process, host-wide, Redis: the script writes the same block).
 */
function blockOption(opts) {
  return opts.blockMs === undefined ? 0 : validate.integer(opts.blockMs, 'options.blockMs', 0, MAX_BLOCK_MS);
}

/** The cost a call names, or COST_NOT_GIVEN (core applies its default). */
function costOption(options) {
  if (options === null || typeof options !== 'object') throw argTypeError('options', 'an object', options);
  const cost = options.cost;
  return cost === undefined ? COST_NOT_GIVEN : validate.cost(cost, 'options.cost');
}

/**
 * A rate limiter with one bucket per key: `new Limiter('100/minute', { burst: 20 })`.
 *
 * `rate` is a rate string in the notation of Python's `limits` (`'10/second'`,
 * `'10 per minute'`, `'500/7 days'`); several quotas (`'10/s; 1000/day'`) are decided
 * all-or-nothing. Options: `burst` (default: the rate's count), `algorithm` ('gcra', the
 * default, or 'token_bucket'), `refill` ('greedy' or 'interval', token bucket only),
 * `maxKeys` (default 100 000, at most 2^27; memory is allocated once), `onFull` ('deny', the
 * default, or 'allowUntracked': what a new key gets when the table has no room), `clock` (a
 * ManualClock; default the monotonic clock), `name` (the policy name in headers; default the
 * quota's name by core's rule, `'100-in-1min'`), `store` (a SharedMemory: one table for
 * every process of the host; default in this process), `blockMs` (default 0: never; how
 * long a denial blocks its key, rate-limiter-flexible's `blockDuration`: every request of the
 * key is denied meanwhile, with a `retryAfterMs` saying so, the denials it answers do not
 * extend it, and the bucket then refills from empty).
 *
 * A call's `cost` defaults to 1 (core's DEFAULT_COST). A full table is a decision
 * (`reason: 'table_full'`), never an exception.
 */
class Limiter {
  #native;
  #apply;
  #out;
  #limit;
  #single;
  #source;
  #clock;
  #rates;

  constructor(rate, options) {
    if (typeof rate !== 'string') throw argTypeError('rate', "a rate string such as '100/minute'", rate);
    const opts = validate.options(options, 'options');
    const burst = opts.burst === undefined ? undefined : validate.integer(opts.burst, 'options.burst', 1, Number.MAX_SAFE_INTEGER);
    const algorithm = opts.algorithm === undefined ? 'gcra' : validate.oneOf(opts.algorithm, 'options.algorithm', ['gcra', 'token_bucket']);
    const refill = opts.refill === undefined ? 'greedy' : validate.oneOf(opts.refill, 'options.refill', ['greedy', 'interval']);
    if (algorithm === 'gcra' && refill !== 'greedy') {
      throw argTypeError('options.refill', "'greedy' for algorithm 'gcra' (interval refill is a token bucket)", refill);
    }
    if (opts.name !== undefined && typeof opts.name !== 'string') throw argTypeError('options.name', 'a string', opts.name);
    const settings = { ...limiterOptions(opts, refill, 'rate'), blockMs: blockOption(opts), ...storeSettings(opts.store) };
    const clock = nativeClock(opts.clock);
    this.#out = sharedArray();
    const quota = { rate, burst, name: opts.name, dimension: 0, argument: 'rate', nameArgument: opts.name === undefined ? 'rate' : 'options.name' };
    try {
      this.#native = new native.NativeLimiter([quota], settings, clock && clock.native, this.#out);
    } catch (error) {
      throw fromNative(error);
    }
    const limits = this.#native.limits();
    this.#single = limits.length === 1;
    this.#limit = limits[0];
    this.#rates = this.#native.rates();
    this.#apply = this.#native.fastFunction();
    // The header function and its shapes' constructors (header_shapes.js) go with the decisions.
    this.#source = headerSource(this.#native, this.#out);
    this.#clock = clock;
  }

  /** The quota(s), written back as a rate string. */
  get rate() {
    return this.#rates.join('; ');
  }

  /** Milliseconds a denial blocks its key for (`options.blockMs`; 0: never). */
  get blockMs() {
    return this.#native.blockMs;
  }

  /** Tests and consumes `cost` (default 1) for `key`, atomically; a denial consumes nothing. */
  check(key, options) {
    const out = this.#out;
    out[OP] = OPS.check;
    out[COSTS] = options === undefined ? COST_NOT_GIVEN : costOption(options);
    this.#apply(key);
    return this.#decision();
  }

  /** The decision `check` would make, consuming nothing. */
  peek(key, options) {
    const out = this.#out;
    out[OP] = OPS.peek;
    out[COSTS] = options === undefined ? COST_NOT_GIVEN : costOption(options);
    this.#apply(key);
    return this.#decision();
  }

  /** Consumes `cost` whether or not it fits, into debt; `allowed` says whether it fitted. */
  force(key, options) {
    const out = this.#out;
    out[OP] = OPS.force;
    out[COSTS] = options === undefined ? COST_NOT_GIVEN : costOption(options);
    this.#apply(key);
    return this.#decision();
  }

  /** Gives `cost` back, never above a full bucket; `allowed` says whether it is out of debt. */
  refund(key, options) {
    const out = this.#out;
    out[OP] = OPS.refund;
    out[COSTS] = options === undefined ? COST_NOT_GIVEN : costOption(options);
    this.#apply(key);
    return this.#decision();
  }

  /**
   * The middleware's check (package-private): `check(key)` and the decision's headers in the
   * style at `styleIndex` (of STYLES) in one native call, names in lower case when
   * `lowercase`. Returns `{ decision, headers }`; throws as `check` and `headers` do.
   */
  [kCheckWithHeaders](key, styleIndex, nowUnixS, lowercase) {
    const out = this.#out;
    out[OP] = OPS.check;
    out[COSTS] = COST_NOT_GIVEN;
    const values = applyRendering(this.#apply, out, key, styleIndex, nowUnixS);
    const decision = this.#decision();
    return { decision, headers: shapedHeaders(this.#source, values, styleIndex, nowUnixS, out[COUNT], lowercase) };
  }

  /** Makes `key`'s bucket full. */
  reset(key) {
    validate.key(key, 'key');
    const out = this.#out;
    out[OP] = OPS.reset;
    out[COSTS] = COST_NOT_GIVEN;
    this.#apply(key);
  }

  /**
   * Resolves with the decision once `cost` for `key` is admitted, waiting as long as the
   * decisions' `retryAfterMs` say (timers, or the ManualClock moving; no polling). Rejects
   * with a RateLimitError: 'never' at once when the cost exceeds the burst, 'timeout' as
   * soon as the wait would pass `timeoutMs` (in the limiter's clock and in real time,
   * whichever ends first), 'aborted' when `signal` fires.
   *
   * **With a ManualClock and no `timeoutMs`, the wait lasts until someone advances the
   * clock far enough: if nothing does, the promise never settles.**
   */
  acquire(key, options) {
    try {
      const opts = validate.options(options, 'options');
      const costOptions = opts.cost === undefined ? undefined : { cost: validate.cost(opts.cost, 'options.cost') };
      validate.key(key, 'key');
      return acquireWith(() => this.check(key, costOptions), this.#clock, opts);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `{ liveKeys, reclaimed, rejectedFull, admittedUntracked }` of the first quota's table (a
   * relaxed snapshot): `rejectedFull` counts new keys denied because the table was full,
   * `admittedUntracked` those admitted untracked under `onFull: 'allowUntracked'`.
   */
  stats() {
    // Core's Limiter::stats(): one table per quota, in quota order.
    const names = this.#native.names();
    const quotas = this.#native.stats().map(([liveKeys, reclaimed, rejectedFull, admittedUntracked], index) => ({
      name: names[index], liveKeys, reclaimed, rejectedFull, admittedUntracked,
    }));
    const { liveKeys, reclaimed, rejectedFull, admittedUntracked } = quotas[0];
    return { liveKeys, reclaimed, rejectedFull, admittedUntracked, slots: this.#native.slots, quotas };
  }

  #decision() {
    if (this.#single) return singleDecision(this.#out, this.#limit, this.#source);
    return severalDecision(this.#out, this.#source, undefined);
  }
}

module.exports = { Limiter, limiterOptions, blockOption };
