'use strict';
// Waiting: the loop behind `acquire` (timers, or a ManualClock moving; no polling), shared by
// Limiter and Policy. Node's idiom over core's decisions: core says how long to wait.

const { RateLimitError, argTypeError } = require('./errors');
const validate = require('./validate');

const NS_PER_MS = 1e6;

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


module.exports = { acquireWith };
