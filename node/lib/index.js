'use strict';
// cellgate for Node: the public API over the native addon. Arguments are validated here
// (typed errors naming the argument, no state changed); decisions are plain JavaScript
// objects built from the numbers the addon writes into a shared Float64Array.

const { native, LAYOUT, sharedArray } = require('./native');
const { argTypeError, outOfRange, fromNative, TableFullError, RateLimitError } = require('./errors');
const validate = require('./validate');

const { ENTRIES, ENTRY_SLOTS, COSTS, BINDING, COUNT, STATUS, ALLOWED, TABLE_FULL, MISSING_COST, COST_NOT_GIVEN } = LAYOUT;
const REMAINING = ENTRIES + 2;
const RETRY_NS = ENTRIES + 3;
const RESET_NS = ENTRIES + 4;
// Core's bounds (DEFAULT_MAX_KEYS, MAX_MAX_KEYS), the same in every runtime.
const { defaultMaxKeys: DEFAULT_MAX_KEYS, maxMaxKeys: MAX_MAX_KEYS } = native.configLimits();
const NS_PER_MS = 1e6;
const MAX_U64 = validate.MAX_U64;
// A Map, not an object literal: `STYLES['toString']` would be Object.prototype's.
const STYLES = new Map([['ietf', 0], ['legacy', 1], ['legacy-epoch', 2]]);

// ---------------------------------------------------------------------------------------------
// Clock

const clockNatives = new WeakMap();

/**
 * A clock that moves only when told to, for tests. Limiters built with it read its time;
 * `acquire` on such a limiter wakes when the clock moves (no timers), so **without a
 * `timeoutMs` it waits until someone advances the clock**; with one, the timeout also ends
 * the wait in real time.
 */
class ManualClock {
  #native;
  #waiters = new Set();

  /** @param {number | bigint} [startNs=0] */
  constructor(startNs = 0) {
    this.#native = new native.NativeManualClock(validate.ns(startNs, 'startNs'));
    clockNatives.set(this, { native: this.#native, waiters: this.#waiters });
  }

  /** Moves time forward by `ms` whole milliseconds (saturating at 2^64 - 1 ns). */
  advance(ms) {
    validate.ms(ms, 'ms', false);
    let delta = BigInt(ms) * 1_000_000n;
    if (delta > MAX_U64) delta = MAX_U64;
    this.#native.advanceNs(delta);
    this.#wake();
  }

  /** Moves time forward by `ns` nanoseconds (a number or bigint; saturating at 2^64 - 1). */
  advanceNs(ns) {
    this.#native.advanceNs(validate.ns(ns, 'ns'));
    this.#wake();
  }

  /** Sets the time; it may go backwards (limiters treat that as no time passing). */
  setNs(ns) {
    this.#native.setNs(validate.ns(ns, 'ns'));
    this.#wake();
  }

  /** @returns {bigint} the time in nanoseconds */
  nowNs() {
    return this.#native.nowNs();
  }

  #wake() {
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}

function nativeClock(clock) {
  if (clock === undefined) return undefined;
  const entry = clockNatives.get(clock);
  if (!entry) throw argTypeError('options.clock', 'a ManualClock', clock);
  return entry;
}

// ---------------------------------------------------------------------------------------------
// Decisions

/**
 * What a limiter answered: `{ allowed, limit, remaining, retryAfterMs, resetAfterMs }`, the
 * same fields on allow and deny. `retryAfterMs` is 0 when allowed and `Infinity` when the
 * cost can never be admitted. Private fields keep the exact nanoseconds for `headers`.
 */
class Decision {
  #retryAfterNs;
  #resetAfterNs;
  #source;
  #entries;

  constructor(allowed, limit, remaining, retryAfterNs, resetAfterNs, source, entries) {
    this.allowed = allowed;
    this.limit = limit;
    this.remaining = remaining;
    this.retryAfterMs = retryAfterNs / NS_PER_MS;
    this.resetAfterMs = resetAfterNs / NS_PER_MS;
    this.#retryAfterNs = retryAfterNs;
    this.#resetAfterNs = resetAfterNs;
    this.#source = source;
    this.#entries = entries;
  }

  static isDecision(value) {
    return value !== null && typeof value === 'object' && #source in value;
  }

  static retryAfterNs(decision) {
    return decision.#retryAfterNs;
  }

  /** Writes the decision into its source's shared array and renders it there. */
  static render(decision, style, nowUnixS) {
    const source = decision.#source;
    const out = source.out;
    if (decision.#entries === undefined) {
      out[ENTRIES] = decision.allowed ? 1 : 0;
      out[ENTRIES + 1] = decision.limit;
      out[REMAINING] = decision.remaining;
      out[RETRY_NS] = decision.#retryAfterNs;
      out[RESET_NS] = decision.#resetAfterNs;
      return source.native.renderHeaders(style, nowUnixS, 1);
    }
    const entries = decision.#entries;
    for (let index = 0; index < entries.length; index++) out[ENTRIES + index] = entries[index];
    return source.native.renderHeaders(style, nowUnixS, entries.length / ENTRY_SLOTS);
  }

  /** The wait `Retry-After` describes: the longest wait among the refusing entries. */
  static combinedRetryAfterNs(decision) {
    const entries = decision.#entries;
    if (entries === undefined) return decision.allowed ? undefined : decision.#retryAfterNs;
    let longest;
    for (let base = 0; base < entries.length; base += ENTRY_SLOTS) {
      if (entries[base] === 0 && (longest === undefined || entries[base + 3] > longest)) longest = entries[base + 3];
    }
    return longest;
  }
}

/**
 * The HTTP headers for a decision, rendered by the Rust core (the same bytes as every other
 * cellgate runtime): with `style` 'ietf' (the default) `RateLimit-Policy` and `RateLimit`
 * (draft-ietf-httpapi-ratelimit-headers-10), with 'legacy' `X-RateLimit-Limit`,
 * `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds from now), with 'legacy-epoch' the
 * reset as a Unix time; plus `Retry-After` (whole seconds, rounded up) on a denial.
 *
 * @returns {Record<string, string>}
 */
function headers(decision, options) {
  if (!Decision.isDecision(decision)) throw argTypeError('decision', 'a decision returned by a cellgate limiter', decision);
  const opts = validate.options(options, 'options');
  const styleName = opts.style === undefined ? 'ietf' : opts.style;
  const style = typeof styleName === 'string' ? STYLES.get(styleName) : undefined;
  if (style === undefined) throw argTypeError('options.style', "'ietf', 'legacy' or 'legacy-epoch'", styleName);
  checkDecisionFields(decision);
  let nowUnixS = 0;
  if (style === 2) {
    nowUnixS = opts.nowUnixS === undefined ? Math.floor(Date.now() / 1000) : validate.integer(opts.nowUnixS, 'options.nowUnixS', 0, Number.MAX_SAFE_INTEGER);
  }
  let rendered;
  try {
    rendered = Decision.render(decision, style, nowUnixS);
  } catch (error) {
    throw fromNative(error, 'decision');
  }
  const pairs = rendered.split('\n');
  const result = {};
  for (let index = 0; index < pairs.length; index += 2) result[pairs[index]] = pairs[index + 1];
  return result;
}

/**
 * The public fields `headers` reads back from a decision (it is a plain object: they can be
 * assigned), checked as any argument is: a TypeError or RangeError naming the field.
 */
function checkDecisionFields(decision) {
  if (typeof decision.allowed !== 'boolean') throw argTypeError('decision.allowed', 'a boolean', decision.allowed);
  validate.integer(decision.limit, 'decision.limit', 0, Number.MAX_SAFE_INTEGER);
  validate.integer(decision.remaining, 'decision.remaining', 0, Number.MAX_SAFE_INTEGER);
}

/**
 * The JSON body of a 429 response for a decision, rendered by the core:
 * `{"error":"rate_limited","retry_after":N}` (N as in `Retry-After`, or null for never).
 */
function limitedBody(decision) {
  if (!Decision.isDecision(decision)) throw argTypeError('decision', 'a decision returned by a cellgate limiter', decision);
  const retryAfterNs = Decision.combinedRetryAfterNs(decision);
  return native.render429Body(retryAfterNs === undefined ? 0 : retryAfterNs);
}

// ---------------------------------------------------------------------------------------------
// Waiting

function nowMs(clock) {
  return clock === undefined ? performance.now() : Number(clock.native.nowNs()) / NS_PER_MS;
}

/**
 * Waits `waitMs` (a timer), or for the manual clock to move; rejects on abort, and with
 * 'timeout' when `realLeftMs` of real time pass first (a manual clock nobody moves).
 */
function sleep(waitMs, clock, signal, decision, realLeftMs) {
  return new Promise((resolve, reject) => {
    let timer;
    let deadline;
    const settle = () => {
      if (timer !== undefined) clearTimeout(timer);
      if (deadline !== undefined) clearTimeout(deadline);
      if (clock !== undefined) clock.waiters.delete(done);
      if (signal !== undefined) signal.removeEventListener('abort', aborted);
    };
    const done = () => {
      settle();
      resolve();
    };
    const aborted = () => {
      settle();
      reject(new RateLimitError('aborted', decision, { cause: signal.reason }));
    };
    const timedOut = () => {
      settle();
      reject(new RateLimitError('timeout', decision));
    };
    if (signal !== undefined) signal.addEventListener('abort', aborted, { once: true });
    if (clock === undefined) {
      // Timers may fire up to a millisecond early; the caller then checks again and waits
      // for the (short) rest, so there is never a loop faster than the wait. The monotonic
      // clock is real time: the caller already refused a wait past the timeout.
      timer = setTimeout(done, Math.max(1, Math.ceil(waitMs)));
    } else {
      clock.waiters.add(done);
      if (realLeftMs !== Infinity) deadline = setTimeout(timedOut, Math.max(1, Math.ceil(realLeftMs)));
    }
  });
}

function checkSignal(signal) {
  if (signal === undefined) return undefined;
  if (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw argTypeError('options.signal', 'an AbortSignal', signal);
  }
  return signal;
}

/**
 * The loop behind `acquire`, shared by Limiter and Policy. `timeoutMs` bounds the wait in the
 * limiter's clock and in real (monotonic) time, whichever ends first (the rule Python's
 * helper follows too): on the monotonic clock the two are one; on a ManualClock nobody
 * advances, the real bound is what ends the wait. Without a timeout, a ManualClock wait
 * lasts until the clock is advanced far enough.
 */
async function acquireWith(check, clock, options) {
  const timeoutMs = options.timeoutMs === undefined ? Infinity : validate.ms(options.timeoutMs, 'options.timeoutMs', true);
  const signal = checkSignal(options.signal);
  if (signal !== undefined && signal.aborted) throw new RateLimitError('aborted', undefined, { cause: signal.reason });
  const start = nowMs(clock);
  const realStart = performance.now();
  for (;;) {
    const decision = check();
    if (decision.allowed) return decision;
    if (decision.retryAfterMs === Infinity) throw new RateLimitError('never', decision);
    const elapsed = nowMs(clock) - start;
    if (elapsed + decision.retryAfterMs > timeoutMs) throw new RateLimitError('timeout', decision);
    const realLeftMs = timeoutMs - (performance.now() - realStart);
    if (realLeftMs <= 0) throw new RateLimitError('timeout', decision);
    await sleep(decision.retryAfterMs, clock, signal, decision, realLeftMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Limiter

function checkMaxKeys(value) {
  return value === undefined ? DEFAULT_MAX_KEYS : validate.integer(value, 'options.maxKeys', 1, MAX_MAX_KEYS);
}

/**
 * Checks the header names with core's rule (non-empty printable ASCII, distinct, at most 8);
 * `what(index)` is the argument that gave name `index`, what it must be and its value, and
 * `list` the same for the list as a whole (too many names).
 */
function checkNames(names, what, [listName, listExpected, listValue]) {
  const problem = native.checkNames(names);
  if (problem === null) return;
  if (problem.tooMany) throw outOfRange(listName, `${listExpected} (${problem.message})`, listValue);
  const [name, expected, value] = what(problem.index);
  throw outOfRange(name, `${expected} (${problem.message})`, value);
}

function checkNameType(value, name) {
  if (typeof value !== 'string') throw argTypeError(name, 'a string', value);
  return value;
}

/**
 * The error for a call whose costs core's rule completed with none for `dimension` (a policy
 * of several dimensions needs one for each): names the cost as the caller wrote the costs.
 */
function missingCost(costs, name, dimensions, dimension) {
  const where = Array.isArray(costs) ? `${name}[${dimension}]` : `${name}.${dimensions[dimension]}`;
  return argTypeError(where, `a cost (an integer from 0 to 2^53 - 1): a policy of several dimensions needs one for each of ${dimensions.join(', ')}`, undefined);
}

/**
 * A rate limiter with one bucket per key: `new Limiter('100/minute', { burst: 20 })`.
 *
 * `rate` is a rate string in the notation of Python's `limits` (`'10/second'`,
 * `'10 per minute'`, `'500/7 days'`); several quotas (`'10/s; 1000/day'`) are decided
 * all-or-nothing. Options: `burst` (default: the rate's count), `algorithm` ('gcra', the
 * default, or 'token_bucket'), `refill` ('greedy' or 'interval', token bucket only),
 * `maxKeys` (default 100 000, at most 2^27; memory is allocated once), `clock` (a
 * ManualClock; default the monotonic clock), `name` (the policy name in headers; default the
 * quota's name by core's rule, `'100-in-1min'`).
 *
 * A call's `cost` defaults to 1 (core's DEFAULT_COST).
 */
class Limiter {
  #native;
  #check;
  #peek;
  #force;
  #refund;
  #out;
  #limit;
  #multi;
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
    const maxKeys = checkMaxKeys(opts.maxKeys);
    const clock = nativeClock(opts.clock);
    let rates;
    try {
      rates = native.splitRates(rate);
    } catch (error) {
      throw fromNative(error, 'rate');
    }
    this.#out = sharedArray();
    this.#clock = clock;
    this.#rates = rates.map((each) => each.rate);
    try {
      if (rates.length === 1) {
        // No name: the addon names the quota by core's rule ('100-in-1min').
        const name = opts.name === undefined ? undefined : checkNameType(opts.name, 'options.name');
        if (name !== undefined) checkNames([name], () => ['options.name', 'a header name', name], ['options.name', 'one name', name]);
        this.#native = new native.NativeLimiter(rate, burst, refill, maxKeys, clock && clock.native, this.#out, name);
        this.#multi = false;
        this.#limit = this.#native.limit;
      } else {
        if (burst !== undefined) throw argTypeError('options.burst', "undefined with several quotas (write '10/s (burst 20)' per quota)", burst);
        if (refill !== 'greedy') throw argTypeError('options.refill', "'greedy' with several quotas", refill);
        if (opts.name !== undefined) throw argTypeError('options.name', "undefined with several quotas (each is named by core's rule, '10-in-1s')", opts.name);
        // Each quota shows under its default name: two quotas alike would be one header item twice.
        checkNames(rates.map((each) => each.name), () => ['rate', 'quotas with distinct header names', rate], ['rate', 'at most 8 quotas', rate]);
        const entries = rates.map((each) => ({ name: each.name, rate: each.rate, dimension: 0 }));
        this.#native = new native.NativePolicy(entries, maxKeys, clock && clock.native, this.#out);
        this.#multi = true;
        this.#limit = undefined;
      }
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) throw error;
      throw fromNative(error, 'rate');
    }
    [this.#check, this.#peek, this.#force, this.#refund] = this.#native.fastFunctions();
    this.#source = { native: this.#native, out: this.#out };
  }

  /** The quota(s), written back as a rate string. */
  get rate() {
    return this.#multi ? this.#rates.join('; ') : this.#native.rate;
  }

  /** Tests and consumes `cost` (default 1) for `key`, atomically; a denial consumes nothing. */
  check(key, options) {
    const out = this.#out;
    out[COSTS] = options === undefined ? COST_NOT_GIVEN : costOption(options);
    this.#check(key);
    return this.#decision(out[STATUS]);
  }

  /** The decision `check` would make, consuming nothing. */
  peek(key, options) {
    const out = this.#out;
    out[COSTS] = options === undefined ? COST_NOT_GIVEN : costOption(options);
    this.#peek(key);
    return this.#decision(out[STATUS]);
  }

  /** Consumes `cost` whether or not it fits, into debt; `allowed` says whether it fitted. */
  force(key, options) {
    const out = this.#out;
    out[COSTS] = options === undefined ? COST_NOT_GIVEN : costOption(options);
    this.#force(key);
    return this.#decision(out[STATUS]);
  }

  /** Gives `cost` back, never above a full bucket; `allowed` says whether it is out of debt. */
  refund(key, options) {
    const out = this.#out;
    out[COSTS] = options === undefined ? COST_NOT_GIVEN : costOption(options);
    this.#refund(key);
    return this.#decision(out[STATUS]);
  }

  /** Makes `key`'s bucket full. */
  reset(key) {
    validate.key(key, 'key');
    try {
      this.#native.reset(key);
    } catch (error) {
      throw fromNative(error, 'key');
    }
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

  /** `{ liveKeys, reclaimed, rejectedFull, slots }` (single quota; a relaxed snapshot). */
  stats() {
    if (this.#multi) return undefined;
    const [liveKeys, reclaimed, rejectedFull, slots] = this.#native.stats();
    return { liveKeys, reclaimed, rejectedFull, slots };
  }

  #decision(status) {
    if (status === TABLE_FULL) throw new TableFullError();
    const out = this.#out;
    if (this.#multi) return policyDecision(status, out, this.#source, undefined);
    return new Decision(status === ALLOWED, this.#limit, out[REMAINING], out[RETRY_NS], out[RESET_NS], this.#source, undefined);
  }
}

/** The cost a call names, or COST_NOT_GIVEN (the addon applies core's default). */
function costOption(options) {
  if (options === null || typeof options !== 'object') throw argTypeError('options', 'an object', options);
  const cost = options.cost;
  return cost === undefined ? COST_NOT_GIVEN : validate.cost(cost, 'options.cost');
}

/**
 * A decision of several entries from the shared array: the binding entry's numbers, with
 * the policy's `allowed` (and no wait when allowed). With `names`, a policy decision that
 * also carries `binding` (a name) and every entry's decision.
 */
function policyDecision(status, out, source, names) {
  const allowed = status === ALLOWED;
  const count = out[COUNT];
  const binding = out[BINDING];
  const base = ENTRIES + ENTRY_SLOTS * binding;
  const entries = new Array(ENTRY_SLOTS * count);
  for (let index = 0; index < entries.length; index++) entries[index] = out[ENTRIES + index];
  const decision = new Decision(allowed, out[base + 1], out[base + 2], allowed ? 0 : out[base + 3], out[base + 4], source, entries);
  if (names !== undefined) {
    decision.binding = names[binding];
    const decisions = [];
    for (let index = 0; index < count; index++) {
      const at = ENTRY_SLOTS * index;
      decisions.push({
        name: names[index],
        allowed: entries[at] === 1,
        limit: entries[at + 1],
        remaining: entries[at + 2],
        retryAfterMs: entries[at + 3] / NS_PER_MS,
        resetAfterMs: entries[at + 4] / NS_PER_MS,
      });
    }
    decision.decisions = decisions;
  }
  return decision;
}

// ---------------------------------------------------------------------------------------------
// Client keys

/**
 * The key for a client's IP address, as a server reports it: one key per IPv4 address and
 * per IPv6 prefix of `ipv6PrefixLen` bits (default 56, as express-rate-limit), the same for
 * every spelling (`[2001:db8::1]:443`, `::ffff:192.0.2.1`, zone ids). Returns a Buffer.
 * Throws a RangeError for text that is not an address.
 */
function clientKey(address, options) {
  if (typeof address !== 'string') throw argTypeError('address', 'a string', address);
  const opts = validate.options(options, 'options');
  const prefix = opts.ipv6PrefixLen === undefined ? 56 : validate.integer(opts.ipv6PrefixLen, 'options.ipv6PrefixLen', 1, 128);
  try {
    return native.clientKey(address, prefix);
  } catch (error) {
    throw fromNative(error, 'address');
  }
}

// ---------------------------------------------------------------------------------------------
// Policy

/**
 * Several quotas over named dimensions, decided all-or-nothing per key, with reserve and
 * settle: `new Policy([{ name: 'rpm', rate: '60/minute' }, { name: 'tpm', rate:
 * '10000/minute', dimension: 'tokens' }])`. An entry's `dimension` defaults to 'requests'.
 * Costs are `{ requests: 1, tokens: 500 }`, an array in dimension order, or a number when
 * there is one dimension. Core's rule completes them: with one dimension a cost not named is
 * 1; with several every dimension must be named (0 is a cost), else a TypeError naming it.
 */
class Policy {
  #native;
  #ops;
  #out;
  #names;
  #dimensions;
  #source;
  #clock;

  constructor(entries, options) {
    if (!Array.isArray(entries) || entries.length === 0) throw argTypeError('entries', 'a non-empty array of { name, rate, burst?, dimension? }', entries);
    const opts = validate.options(options, 'options');
    const maxKeys = checkMaxKeys(opts.maxKeys);
    const clock = nativeClock(opts.clock);
    const dimensions = [];
    const specs = entries.map((entry, index) => {
      const what = `entries[${index}]`;
      if (entry === null || typeof entry !== 'object') throw argTypeError(what, 'an object', entry);
      const name = checkNameType(entry.name, `${what}.name`);
      if (typeof entry.rate !== 'string') throw argTypeError(`${what}.rate`, "a rate string such as '60/minute'", entry.rate);
      const burst = entry.burst === undefined ? undefined : validate.integer(entry.burst, `${what}.burst`, 1, Number.MAX_SAFE_INTEGER);
      const dimensionName = entry.dimension === undefined ? 'requests' : entry.dimension;
      if (typeof dimensionName !== 'string' || dimensionName === '') throw argTypeError(`${what}.dimension`, 'a non-empty string', dimensionName);
      let dimension = dimensions.indexOf(dimensionName);
      if (dimension < 0) dimension = dimensions.push(dimensionName) - 1;
      return { name, rate: entry.rate, burst, dimension };
    });
    const names = specs.map((spec) => spec.name);
    checkNames(names, (index) => [`entries[${index}].name`, 'a header name distinct from the others', names[index]], ['entries.length', 'at most 8', names.length]);
    this.#out = sharedArray();
    try {
      this.#native = new native.NativePolicy(specs, maxKeys, clock && clock.native, this.#out);
    } catch (error) {
      throw fromNative(error, 'entries');
    }
    this.#ops = this.#native.fastFunctions();
    this.#names = names;
    this.#dimensions = dimensions;
    this.#source = { native: this.#native, out: this.#out };
    this.#clock = clock;
  }

  /** The dimension names, in the order costs arrays use. */
  get dimensions() {
    return [...this.#dimensions];
  }

  /** The entry names, in entry order. */
  get names() {
    return [...this.#names];
  }

  /** Admits `costs` for `key` only if every entry admits its cost, charging all or none. */
  check(key, costs) {
    return this.#run(0, key, costs);
  }

  /** The decision `check` would make, consuming nothing. */
  peek(key, costs) {
    return this.#run(1, key, costs);
  }

  /** Charges `costs` on every entry regardless (into debt). */
  force(key, costs) {
    return this.#run(2, key, costs);
  }

  /** Gives `costs` back on every entry, never above full. */
  refund(key, costs) {
    return this.#run(3, key, costs);
  }

  /** Makes every entry's bucket for `key` full. */
  reset(key) {
    validate.key(key, 'key');
    try {
      this.#native.reset(key);
    } catch (error) {
      throw fromNative(error, 'key');
    }
  }

  /**
   * Reserves an estimate: a `check` that, when admitted, returns a reservation to `settle`
   * with the actual costs. Returns `{ decision, reservation }`; `reservation` is null when
   * refused (nothing was charged).
   */
  reserve(key, estimate) {
    validate.key(key, 'key');
    this.#writeCosts(estimate, 'estimate');
    let reservation;
    try {
      reservation = this.#native.reserve(key);
    } catch (error) {
      throw fromNative(error, 'key');
    }
    const status = this.#out[STATUS];
    this.#checkStatus(status, estimate, 'estimate');
    const decision = policyDecision(status, this.#out, this.#source, this.#names);
    return { decision, reservation: reservation.pending ? new Reservation(this, reservation, estimate) : null };
  }

  /**
   * Settles a reservation with the `actual` costs: refunds what was not used and charges
   * what exceeds the estimate (into debt if need be); a dimension `actual` does not name
   * keeps its estimate (core's rule). A reservation settles once.
   */
  settle(reservation, actual) {
    if (!(reservation instanceof Reservation) || reservation.policy !== this) {
      throw argTypeError('reservation', 'a reservation made by this policy', reservation);
    }
    this.#writeCosts(actual, 'actual');
    let status;
    try {
      status = this.#native.settle(reservation.native);
    } catch (error) {
      throw fromNative(error, 'reservation');
    }
    this.#checkStatus(status, actual, 'actual');
    return policyDecision(status, this.#out, this.#source, this.#names);
  }

  /**
   * As `Limiter#acquire`, for `costs`. **With a ManualClock and no `timeoutMs`, the wait
   * lasts until someone advances the clock far enough.**
   */
  acquire(key, options) {
    try {
      const opts = validate.options(options, 'options');
      validate.key(key, 'key');
      const costs = opts.costs;
      this.#costsArray(costs, 'options.costs');
      return acquireWith(() => this.#run(0, key, costs, 'options.costs'), this.#clock, opts);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #run(op, key, costs, name = 'costs') {
    this.#writeCosts(costs, name);
    this.#ops[op](key);
    const status = this.#out[STATUS];
    this.#checkStatus(status, costs, name);
    return policyDecision(status, this.#out, this.#source, this.#names);
  }

  #checkStatus(status, costs, name) {
    if (status === TABLE_FULL) throw new TableFullError();
    if (status === MISSING_COST) throw missingCost(costs, name, this.#dimensions, this.#out[BINDING]);
  }

  /**
   * Validates `costs` completely before writing any, so a bad one changes nothing. A
   * dimension they name no cost for is COST_NOT_GIVEN: the addon completes the costs by
   * core's rule.
   */
  #costsArray(costs, name) {
    const count = this.#dimensions.length;
    const values = new Array(count).fill(COST_NOT_GIVEN);
    const given = (cost, where) => (cost === undefined ? COST_NOT_GIVEN : validate.cost(cost, where));
    if (costs === undefined) {
      // Nothing named: every dimension is COST_NOT_GIVEN.
    } else if (typeof costs === 'number') {
      if (count !== 1) throw argTypeError(name, `an object or array (the policy has ${count} dimensions)`, costs);
      values[0] = validate.cost(costs, name);
    } else if (Array.isArray(costs)) {
      if (costs.length !== count) throw outOfRange(`${name}.length`, `${count} (one cost per dimension)`, costs.length);
      for (let index = 0; index < count; index++) values[index] = given(costs[index], `${name}[${index}]`);
    } else if (costs !== null && typeof costs === 'object') {
      for (const dimension of Object.keys(costs)) {
        const index = this.#dimensions.indexOf(dimension);
        if (index < 0) throw outOfRange(name, `keys among ${this.#dimensions.join(', ')}`, dimension);
        values[index] = given(costs[dimension], `${name}.${dimension}`);
      }
    } else {
      throw argTypeError(name, 'an object of costs per dimension, an array or a number', costs);
    }
    return values;
  }

  #writeCosts(costs, name) {
    const values = this.#costsArray(costs, name);
    for (let index = 0; index < values.length; index++) this.#out[COSTS + index] = values[index];
  }
}

/** An admitted reservation of a Policy, to settle once with the actual costs. */
class Reservation {
  constructor(policy, nativeReservation, estimate) {
    Object.defineProperty(this, 'policy', { value: policy });
    Object.defineProperty(this, 'native', { value: nativeReservation });
    this.estimate = estimate;
  }

  /** Whether the reservation has not been settled yet. */
  get pending() {
    return this.native.pending;
  }

  /** `policy.settle(this, actual)`. */
  settle(actual) {
    return this.policy.settle(this, actual);
  }
}

module.exports = {
  Limiter,
  Policy,
  Reservation,
  ManualClock,
  Decision,
  headers,
  limitedBody,
  clientKey,
  TableFullError,
  RateLimitError,
};
