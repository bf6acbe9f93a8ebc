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

test('Express: a blocked client gets 429s with the block in Retry-After until it ends, and draft-7 headers', async () => {
  const express = require('express');
  const { rateLimit } = require('cellgate/express');
  const { request, close } = require('./http');
  const clock = new ManualClock();
  const app = express();
  // The login brute-force recipe with a lockout: 3 attempts a minute, then 10 minutes blocked.
  app.use(rateLimit({ limiter: new Limiter('3/minute', { clock, blockMs: 10 * MINUTE_MS }), headers: 'draft-7' }));
  app.post('/login', (req, res) => res.status(401).end());
  app.get('/login', (req, res) => res.status(401).end());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const port = server.address().port;
    for (let i = 0; i < 3; i += 1) assert.equal((await request(port, '/login')).status, 401);
    const blocked = await request(port, '/login');
    assert.equal(blocked.status, 429);
    // Ten minutes, then the 20 s a unit takes to refill at 3/minute.
    assert.equal(blocked.headers['retry-after'], '620');
    assert.equal(blocked.headers['ratelimit-policy'], '3;w=60');
    assert.equal(blocked.headers.ratelimit, 'limit=3, remaining=0, reset=660');
    clock.advance(5 * MINUTE_MS);
    const still = await request(port, '/login');
    assert.equal(still.status, 429);
    assert.equal(still.headers['retry-after'], '320', 'the block is not extended by the requests it denies');
    clock.advance(320_000);
    assert.equal((await request(port, '/login')).status, 401);
  } finally {
    await close(server);
  }
});
