'use strict';
// RedisLimiter without a server (these run in plain `make test-node` too): the options it
// refuses, how it tells the clients apart, and the client protocol against scripted fake
// clients: NOSCRIPT -> EVAL (counted), an error or a reply that never comes -> the outage
// policy within the timeout, a reply core refuses -> the outage policy, the retry interval.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { RedisLimiter, SCRIPT, SCRIPT_SHA1 } = require('cellgate/redis');

/** An ioredis-like client whose every call is answered by `answer(command, args)`. */
function fakeIoredis(answer) {
  const calls = [];
  return {
    calls,
    evalshaBuffer: (...args) => { calls.push(['EVALSHA', ...args]); return answer('EVALSHA', args); },
    evalBuffer: (...args) => { calls.push(['EVAL', ...args]); return answer('EVAL', args); },
  };
}

test('options: the client, the outage policy, the prefix, the key secret are checked', () => {
  assert.throws(() => new RedisLimiter('1/s', {}), { name: 'TypeError', message: /options\.client must be an ioredis client or a node-redis/ });
  assert.throws(() => new RedisLimiter('1/s', { client: {} }), { name: 'TypeError' });
  const client = fakeIoredis(() => new Promise(() => {}));
  assert.throws(() => new RedisLimiter('1/s', { client, outage: 'deny' }), { name: 'TypeError', message: /options\.outage/ });
  assert.throws(() => new RedisLimiter('1/s', { client, prefix: 'a{b}:' }), { name: 'RangeError', message: /options\.prefix: prefix must not hold/ });
  assert.throws(() => new RedisLimiter('1/s', { client, keySecret: Buffer.alloc(15) }), { name: 'RangeError', message: /options\.keySecret must be 16 bytes, got 15/ });
  assert.throws(() => new RedisLimiter('1/s', { client, timeoutMs: 0 }), { name: 'RangeError', message: /options\.timeoutMs/ });
  assert.throws(() => new RedisLimiter('nonsense', { client }), { name: 'RangeError', message: /limits: invalid rate/ });
  assert.throws(() => new RedisLimiter(42, { client }), { name: 'TypeError', message: /^limits must be/ });
  const limiter = new RedisLimiter('100/minute', { client });
  assert.equal(limiter.outage, 'fallback', 'the default outage policy');
  assert.equal(limiter.clientKind, 'ioredis');
  assert.equal(new RedisLimiter('1/s', { client: { sendCommand: () => new Promise(() => {}) } }).clientKind, 'node-redis');
  assert.match(SCRIPT_SHA1, /^[0-9a-f]{40}$/);
  assert.equal(require('node:crypto').createHash('sha1').update(SCRIPT).digest('hex'), SCRIPT_SHA1);
});

test('the key is prefix{user key}, or its keyed hash with a secret', async () => {
  const client = fakeIoredis(() => Promise.reject(new Error('down')));
  await new RedisLimiter('1/s', { client, prefix: 'app:' }).check('user:42');
  assert.deepEqual(client.calls[0].slice(0, 4), ['EVALSHA', SCRIPT_SHA1, 1, Buffer.from('app:{user:42}')]);
  await new RedisLimiter('1/s', { client, prefix: 'app:', keySecret: Buffer.alloc(16, 7) }).check('user:42');
  const hashed = client.calls[1][3].toString();
  assert.match(hashed, /^app:\{[0-9a-f]{32}\}$/);
  assert.ok(!hashed.includes('user:42'));
});

test('NOSCRIPT: the script is sent with EVAL, once per NOSCRIPT, and counted', async () => {
  // A reply core refuses after EVAL: the policy decides, but the protocol is what is tested.
  const client = fakeIoredis((command) => (command === 'EVALSHA'
    ? Promise.reject(new Error('NOSCRIPT No matching script. Please use EVAL.'))
    : Promise.resolve([Buffer.alloc(8), Buffer.alloc(0), Buffer.alloc(0)])));
  const limiter = new RedisLimiter('1/s', { client, outage: 'open', retryIntervalMs: 0 });
  const decision = await limiter.check('k');
  assert.deepEqual(client.calls.map((call) => call[0]), ['EVALSHA', 'EVAL']);
  assert.equal(client.calls[1][1], SCRIPT);
  // Core re-decides on the record the reply says the script read (none, at time 0): a full
  // bucket charged once must be written, and the empty "after" is not it.
  assert.equal(decision.reason, 'failed_open');
  assert.deepEqual(limiter.stats(), { remote: 0, failedOpen: 1, failedClosed: 0, fallback: 0, errors: 1, skipped: 0, scriptLoads: 1 });
});

test('an error: the outage policy decides, says so, and Redis is skipped for retryIntervalMs', async () => {
  const client = fakeIoredis(() => Promise.reject(new Error('ECONNREFUSED')));
  const limiter = new RedisLimiter('2/hour', { client, retryIntervalMs: 60_000 });
  const decisions = [];
  for (let index = 0; index < 3; index++) decisions.push(await limiter.check('k'));
  assert.deepEqual(decisions.map((decision) => [decision.allowed, decision.reason]), [[true, 'fallback'], [true, 'fallback'], [false, 'fallback']]);
  assert.equal(client.calls.length, 1, 'one try, then skipped within the retry interval');
  assert.deepEqual(limiter.stats(), { remote: 0, failedOpen: 0, failedClosed: 0, fallback: 3, errors: 1, skipped: 2, scriptLoads: 0 });
  const closed = new RedisLimiter('2/hour', { client, outage: 'closed', outageRetryAfterMs: 1500 });
  const denied = await closed.check('k');
  assert.deepEqual([denied.allowed, denied.reason, denied.retryAfterMs], [false, 'failed_closed', 1500]);
});

test('a reply that never comes: the outage policy decides within timeoutMs, and EVAL is not sent after it', async () => {
  let reject;
  const client = fakeIoredis(() => new Promise((_, fail) => { reject = fail; }));
  const limiter = new RedisLimiter('2/hour', { client, outage: 'open', timeoutMs: 30 });
  const started = Date.now();
  const decision = await limiter.check('k');
  const waited = Date.now() - started;
  assert.equal(decision.reason, 'failed_open');
  assert.ok(waited >= 25 && waited < 500, `${waited} ms`);
  // The late NOSCRIPT of the call that timed out sends nothing more.
  reject(new Error('NOSCRIPT No matching script.'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(client.calls.map((call) => call[0]), ['EVALSHA']);
  assert.equal(limiter.stats().scriptLoads, 0);
});

test('reserve and settle under the outage policy: the fallback holds the reservation', async () => {
  const client = fakeIoredis(() => Promise.reject(new Error('down')));
  const limiter = new RedisLimiter([{ name: 'rpm', rate: '10/minute' }, { name: 'tpm', rate: '1000/minute', dimension: 'tokens' }], { client });
  const { decision, reservation } = await limiter.reserve('k', { requests: 1, tokens: 600 });
  assert.equal(decision.reason, 'fallback');
  assert.equal(decision.decisions[1].remaining, 400);
  assert.equal(reservation.remote, false);
  const settled = await reservation.settle({ tokens: 100 });
  assert.equal(settled.reason, 'fallback');
  assert.equal(settled.decisions[1].remaining, 900);
  assert.equal(reservation.pending, false);
  await assert.rejects(limiter.settle(reservation, { tokens: 1 }), { name: 'RangeError', message: /already settled/ });
  await assert.rejects(limiter.check('k', { requests: 1 }), { name: 'TypeError', message: /costs\.tokens must be a cost/ });
});
