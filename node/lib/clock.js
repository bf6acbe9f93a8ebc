'use strict';
// Clocks: a ManualClock for tests (limiters read the monotonic clock otherwise). Translates
// node/src/clock.rs.

const { native } = require('./boundary');
const { argTypeError } = require('./errors');
const validate = require('./validate');

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
    if (delta > validate.MAX_U64) delta = validate.MAX_U64;
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

/** The native half and the waiters of `options.clock` (undefined: the monotonic clock). */
function nativeClock(clock) {
  if (clock === undefined) return undefined;
  const entry = clockNatives.get(clock);
  if (!entry) throw argTypeError('options.clock', 'a ManualClock', clock);
  return entry;
}

module.exports = { ManualClock, nativeClock };
