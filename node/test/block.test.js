'use strict';
// options.blockMs: a denial blocks its key (core's Limiter::with_block_ns), in Limiter and Policy.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Limiter, Policy, ManualClock } = require('cellgate');

const MINUTE_MS = 60_000;

test('five failed logins block the key for fifteen minutes, and the block is not extended', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('5/minute', { clock, blockMs: 15 * MINUTE_MS });
  assert.equal(limiter.blockMs, 15 * MINUTE_MS);
  for (let i = 0; i < 5; i += 1) assert.equal(limiter.check('login:ann').allowed, true);
  const denied = limiter.check('login:ann');
  // Fifteen minutes, then one emission interval (12 s) for the first request to fit.
  const releaseMs = 15 * MINUTE_MS + 12_000;
  assert.equal(denied.allowed, false);
  assert.equal(denied.retryAfterMs, releaseMs);
  clock.advanceNs(BigInt(MINUTE_MS) * 1_000_000n);
  assert.equal(limiter.check('login:ann').retryAfterMs, releaseMs - MINUTE_MS, 'not extended');
  assert.equal(limiter.check('login:bob').allowed, true, 'another key is not blocked');
  clock.setNs(BigInt(releaseMs) * 1_000_000n - 1n);
  assert.equal(limiter.peek('login:ann').allowed, false);
  clock.advanceNs(1n);
  assert.equal(limiter.check('login:ann').allowed, true);
  assert.equal(new Limiter('5/minute').blockMs, 0);
});

test('a policy blocks each quota that denied', () => {
  const clock = new ManualClock();
  const policy = new Policy([
    { name: 'requests', rate: '2/second' },
    { name: 'tokens', rate: '100/minute', dimension: 'tokens' },
  ], { clock, blockMs: 10_000 });
  assert.equal(policy.blockMs, 10_000);
  assert.equal(policy.check('k', { requests: 1, tokens: 10 }).allowed, true);
  assert.equal(policy.check('k', { requests: 1, tokens: 10 }).allowed, true);
  const denied = policy.check('k', { requests: 1, tokens: 10 });
  assert.equal(denied.allowed, false);
  assert.equal(denied.retryAfterMs, 10_500);
  clock.advanceNs(10_500_000_000n);
  assert.equal(policy.check('k', { requests: 1, tokens: 10 }).allowed, true);
});

test('blockMs is validated and names the option', () => {
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 60]) {
    assert.throws(() => new Limiter('5/minute', { blockMs: bad }), (error) => error instanceof RangeError && /options\.blockMs/.test(error.message), String(bad));
  }
  for (const bad of ['15m', 10n, true, null]) {
    assert.throws(() => new Limiter('5/minute', { blockMs: bad }), (error) => error instanceof TypeError && /options\.blockMs/.test(error.message), String(bad));
  }
});
