'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Limiter, Policy, ManualClock, RateLimitError } = require('cellgate');

/** Counts calls to `check`, to show that waiting does not poll. */
function counting(limiter) {
  const check = limiter.check.bind(limiter);
  let calls = 0;
  limiter.check = (...args) => {
    calls += 1;
    return check(...args);
  };
  return () => calls;
}

test('acquire resolves at once when admitted', async () => {
  const limiter = new Limiter('2/second', { clock: new ManualClock() });
  const decision = await limiter.acquire('k');
  assert.equal(decision.allowed, true);
  assert.equal(decision.remaining, 1);
});

test('with a ManualClock, acquire wakes when the clock moves, not before', async () => {
  const clock = new ManualClock();
  const limiter = new Limiter('1/second', { clock });
  const calls = counting(limiter);
  await limiter.acquire('k');
  let resolved = false;
  const pending = limiter.acquire('k').then((decision) => {
    resolved = true;
    return decision;
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(resolved, false);
  assert.equal(calls(), 2, 'one check, then it sleeps');
  clock.advance(500);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(resolved, false, 'half the wait');
  clock.advance(500);
  const decision = await pending;
  assert.equal(decision.allowed, true);
  assert.equal(calls(), 4, 'one check per clock move');
});

test('with the monotonic clock, acquire waits with timers for retryAfterMs (no polling)', async () => {
  const limiter = new Limiter('20/second', { burst: 1 });
  const calls = counting(limiter);
  await limiter.acquire('k');
  const started = performance.now();
  const decision = await limiter.acquire('k');
  const waited = performance.now() - started;
  assert.equal(decision.allowed, true);
  assert.ok(waited >= 40, `waited ${waited} ms for a 50 ms interval`);
  assert.ok(calls() <= 5, `${calls()} checks for one wait`);
});

test('acquire rejects at once when the wait would pass timeoutMs', async () => {
  const clock = new ManualClock();
  const limiter = new Limiter('1/minute', { clock });
  await limiter.acquire('k');
  await assert.rejects(limiter.acquire('k', { timeoutMs: 1000 }), (error) => {
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.reason, 'timeout');
    assert.equal(error.code, 'ERR_CELLGATE_TIMEOUT');
    assert.equal(error.decision.allowed, false);
    assert.equal(error.decision.retryAfterMs, 60_000);
    return true;
  });
  clock.advance(58_000);
  await assert.rejects(limiter.acquire('k', { timeoutMs: 1000 }), RateLimitError, '2 s to wait');
});

test('a wait of exactly timeoutMs is accepted', async () => {
  const clock = new ManualClock();
  const limiter = new Limiter('1/minute', { clock });
  await limiter.acquire('k');
  clock.advance(59_000);
  const pending = limiter.acquire('k', { timeoutMs: 1000 });
  clock.advance(1000);
  assert.equal((await pending).allowed, true);
});

test('acquire rejects with reason never when the cost exceeds the burst', async () => {
  const limiter = new Limiter('5/second', { clock: new ManualClock() });
  await assert.rejects(limiter.acquire('k', { cost: 6 }), (error) => error instanceof RateLimitError && error.reason === 'never' && error.decision.retryAfterMs === Infinity);
});

test('acquire rejects when the signal aborts, before or while waiting', async () => {
  const clock = new ManualClock();
  const limiter = new Limiter('1/hour', { clock });
  await limiter.acquire('k');
  const before = new AbortController();
  before.abort(new Error('gone'));
  await assert.rejects(limiter.acquire('k', { signal: before.signal }), (error) => error.reason === 'aborted' && error.name === 'AbortError' && error.cause.message === 'gone');
  const during = new AbortController();
  const pending = limiter.acquire('k', { signal: during.signal });
  setTimeout(() => during.abort(), 5);
  await assert.rejects(pending, (error) => error instanceof RateLimitError && error.reason === 'aborted' && error.decision.allowed === false);
  clock.advance(3_600_000);
  assert.equal(limiter.check('k').allowed, true, 'the aborted wait consumed nothing');
});

test('acquire validates its arguments by rejecting', async () => {
  const limiter = new Limiter('5/second', { clock: new ManualClock() });
  await assert.rejects(limiter.acquire('k', { cost: NaN }), RangeError);
  await assert.rejects(limiter.acquire('k', { timeoutMs: -1 }), RangeError);
  await assert.rejects(limiter.acquire('k', { timeoutMs: NaN }), RangeError);
  await assert.rejects(limiter.acquire('k', { signal: {} }), TypeError);
  await assert.rejects(limiter.acquire(5), TypeError);
  assert.equal(limiter.check('k', { cost: 5 }).allowed, true);
});

test('Policy#acquire waits for every entry', async () => {
  const clock = new ManualClock();
  const policy = new Policy([{ name: 'a', rate: '1/second' }, { name: 't', rate: '10/second', dimension: 'tokens' }], { clock });
  await policy.acquire('k', { costs: { requests: 1, tokens: 10 } });
  const pending = policy.acquire('k', { costs: { requests: 1, tokens: 10 } });
  clock.advance(1000);
  const decision = await pending;
  assert.equal(decision.allowed, true);
});

/** Settles with the outcome of `promise` ('resolved' or its error), or 'hung' after `boundMs`. */
async function within(promise, boundMs) {
  let bound;
  const hung = new Promise((resolve) => { bound = setTimeout(() => resolve('hung'), boundMs); });
  try {
    return await Promise.race([promise.then(() => 'resolved', (error) => error), hung]);
  } finally {
    clearTimeout(bound);
  }
}

test('with a ManualClock nobody advances, timeoutMs ends the wait in real time too', async () => {
  const clock = new ManualClock();
  const limiter = new Limiter('10/second', { clock });
  limiter.check('k', { cost: 10 });
  const started = performance.now();
  const outcome = await within(limiter.acquire('k', { timeoutMs: 200 }), 5000);
  const waitedMs = performance.now() - started;
  assert.ok(outcome instanceof RateLimitError, `the wait ended: ${outcome}`);
  assert.equal(outcome.reason, 'timeout');
  assert.equal(outcome.code, 'ERR_CELLGATE_TIMEOUT');
  assert.equal(outcome.decision.allowed, false);
  assert.equal(outcome.decision.retryAfterMs, 100, 'the last decision seen');
  assert.ok(waitedMs >= 190 && waitedMs < 2000, `ended after ${waitedMs} ms of real time, not 200`);
  assert.equal(clock.nowNs(), 0n, 'the clock never moved');
  assert.equal(limiter.peek('k').remaining, 0, 'the timed-out wait consumed nothing');
});

test('the real-time bound holds across clock moves that do not admit, and for Policy#acquire', async () => {
  const clock = new ManualClock();
  const limiter = new Limiter('10/second', { clock });
  limiter.check('k', { cost: 10 });
  const pending = within(limiter.acquire('k', { timeoutMs: 150 }), 5000);
  setTimeout(() => clock.advance(10), 20);
  setTimeout(() => clock.advance(10), 60);
  const outcome = await pending;
  assert.ok(outcome instanceof RateLimitError && outcome.reason === 'timeout', `${outcome}`);
  assert.equal(outcome.decision.retryAfterMs, 80, 'the decision after the last move');
  const policy = new Policy([{ name: 'a', rate: '10/second' }], { clock });
  policy.check('k', 10);
  const policyOutcome = await within(policy.acquire('k', { timeoutMs: 100 }), 5000);
  assert.ok(policyOutcome instanceof RateLimitError && policyOutcome.reason === 'timeout', `${policyOutcome}`);
});

test('a ManualClock that moves in time still admits before the real-time bound', async () => {
  const clock = new ManualClock();
  const limiter = new Limiter('1/second', { clock });
  limiter.check('k');
  const pending = within(limiter.acquire('k', { timeoutMs: 2000 }), 5000);
  setTimeout(() => clock.advance(1000), 20);
  assert.equal(await pending, 'resolved');
});
