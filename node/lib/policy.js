'use strict';
// Policy: several named quotas over named dimensions, with reserve and settle; the same core
// Limiter as `Limiter` (node/src/limiter.rs), built from entries instead of a rate string.

const { native, LAYOUT, OPS, sharedArray } = require('./boundary');
const { argTypeError, outOfRange, fromNative } = require('./errors');
const { severalDecision, shapedHeaders, headerSource, applyRendering, kCheckWithHeaders } = require('./decision');
const { nativeClock } = require('./clock');
const { limiterOptions, blockOption } = require('./limiter');
const { storeSettings } = require('./shared_memory');
const { acquireWith } = require('./wait');
const validate = require('./validate');

const { COSTS, OP, COUNT, STATUS, BINDING, MISSING_COST, COST_NOT_GIVEN } = LAYOUT;

/**
 * The error for a call whose costs core's rule completed with none for `dimension` (a policy
 * of several dimensions needs one for each): names the cost as the caller wrote the costs.
 */
function missingCost(costs, name, dimensions, dimension) {
  const where = Array.isArray(costs) ? `${name}[${dimension}]` : `${name}.${dimensions[dimension]}`;
  return argTypeError(where, `a cost (an integer from 0 to 2^53 - 1): a policy of several dimensions needs one for each of ${dimensions.join(', ')}`, undefined);
}

/**
 * Several quotas over named dimensions, decided all-or-nothing per key, with reserve and
 * settle: `new Policy([{ name: 'rpm', rate: '60/minute' }, { name: 'tpm', rate:
 * '10000/minute', dimension: 'tokens' }])`. An entry's `dimension` defaults to 'requests'.
 * Options: `maxKeys`, `onFull`, `clock`, `store`, `blockMs` (each quota that denied is
 * blocked), as for Limiter. Costs are `{ requests: 1, tokens:
 * 500 }`, an array in dimension order, or a number when there is one dimension. Core's rule
 * completes them: with one dimension a cost not named is 1; with several every dimension
 * must be named (0 is a cost), else a TypeError naming it.
 */
class Policy {
  #native;
  #apply;
  #out;
  #names;
  #dimensions;
  #source;
  #clock;

  constructor(entries, options) {
    if (!Array.isArray(entries) || entries.length === 0) throw argTypeError('entries', 'a non-empty array of { name, rate, burst?, dimension? }', entries);
    const opts = validate.options(options, 'options');
    const settings = { ...limiterOptions(opts, 'greedy', 'entries'), blockMs: blockOption(opts), ...storeSettings(opts.store) };
    const clock = nativeClock(opts.clock);
    const dimensions = [];
    const quotas = entries.map((entry, index) => {
      const what = `entries[${index}]`;
      if (entry === null || typeof entry !== 'object') throw argTypeError(what, 'an object', entry);
      if (typeof entry.name !== 'string') throw argTypeError(`${what}.name`, 'a string', entry.name);
      if (typeof entry.rate !== 'string') throw argTypeError(`${what}.rate`, "a rate string such as '60/minute'", entry.rate);
      const burst = entry.burst === undefined ? undefined : validate.integer(entry.burst, `${what}.burst`, 1, Number.MAX_SAFE_INTEGER);
      const dimensionName = entry.dimension === undefined ? 'requests' : entry.dimension;
      if (typeof dimensionName !== 'string' || dimensionName === '') throw argTypeError(`${what}.dimension`, 'a non-empty string', dimensionName);
      let dimension = dimensions.indexOf(dimensionName);
      if (dimension < 0) dimension = dimensions.push(dimensionName) - 1;
      return { rate: entry.rate, burst, name: entry.name, dimension, argument: what, nameArgument: `${what}.name` };
    });
    this.#out = sharedArray();
    try {
      this.#native = new native.NativeLimiter(quotas, settings, clock && clock.native, this.#out);
    } catch (error) {
      throw fromNative(error);
    }
    this.#apply = this.#native.fastFunction();
    this.#names = this.#native.names();
    this.#dimensions = dimensions;
    // The header function and its shapes' constructors (header_shapes.js) go with the decisions.
    this.#source = headerSource(this.#native, this.#out);
    this.#clock = clock;
  }

  /** The dimension names, in the order costs arrays use. */
  /** Milliseconds a denial blocks its key for (`options.blockMs`; 0: never). */
  get blockMs() {
    return this.#native.blockMs;
  }

  get dimensions() {
    return [...this.#dimensions];
  }

  /** The entry names, in entry order. */
  get names() {
    return [...this.#names];
  }

  /** Admits `costs` for `key` only if every entry admits its cost, charging all or none. */
  check(key, costs) {
    return this.#run(OPS.check, key, costs);
  }

  /** The decision `check` would make, consuming nothing. */
  peek(key, costs) {
    return this.#run(OPS.peek, key, costs);
  }

  /** Charges `costs` on every entry regardless (into debt). */
  force(key, costs) {
    return this.#run(OPS.force, key, costs);
  }

  /** Gives `costs` back on every entry, never above full. */
  refund(key, costs) {
    return this.#run(OPS.refund, key, costs);
  }

  /**
   * The middleware's check (package-private): `check(key)` (no costs named: core's rule) and
   * the decision's headers in the style at `styleIndex` in one native call, as
   * Limiter's. Returns `{ decision, headers }`.
   */
  [kCheckWithHeaders](key, styleIndex, nowUnixS, lowercase) {
    this.#writeCosts(undefined, 'costs');
    const out = this.#out;
    out[OP] = OPS.check;
    const values = applyRendering(this.#apply, out, key, styleIndex, nowUnixS);
    this.#checkStatus(undefined, 'costs');
    const decision = severalDecision(out, this.#source, this.#names);
    return { decision, headers: shapedHeaders(this.#source, values, styleIndex, nowUnixS, out[COUNT], lowercase) };
  }

  /** Makes every entry's bucket for `key` full. */
  reset(key) {
    validate.key(key, 'key');
    const out = this.#out;
    out[OP] = OPS.reset;
    // Reset takes no cost; core's rule still asks for one per dimension.
    for (let index = 0; index < this.#dimensions.length; index++) out[COSTS + index] = 0;
    this.#apply(key);
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
    this.#checkStatus(estimate, 'estimate');
    const decision = severalDecision(this.#out, this.#source, this.#names);
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
    try {
      this.#native.settle(reservation.native);
    } catch (error) {
      throw fromNative(error, 'reservation');
    }
    return severalDecision(this.#out, this.#source, this.#names);
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
      return acquireWith(() => this.#run(OPS.check, key, costs, 'options.costs'), this.#clock, opts);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `{ liveKeys, reclaimed, rejectedFull, admittedUntracked }` per entry, in entry order. */
  stats() {
    return this.#native.stats().map(([liveKeys, reclaimed, rejectedFull, admittedUntracked], index) => ({
      name: this.#names[index], liveKeys, reclaimed, rejectedFull, admittedUntracked,
    }));
  }

  #run(op, key, costs, name = 'costs') {
    this.#writeCosts(costs, name);
    this.#out[OP] = op;
    this.#apply(key);
    this.#checkStatus(costs, name);
    return severalDecision(this.#out, this.#source, this.#names);
  }

  #checkStatus(costs, name) {
    if (this.#out[STATUS] === MISSING_COST) throw missingCost(costs, name, this.#dimensions, this.#out[BINDING]);
  }

  /**
   * Validates `costs` completely before writing any, so a bad one changes nothing. A
   * dimension they name no cost for is COST_NOT_GIVEN: core completes the costs by its rule.
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

module.exports = { Policy, Reservation };
