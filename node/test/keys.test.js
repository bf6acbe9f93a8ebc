'use strict';
// Uint8Array keys whose bytes are not there to read: a detached ArrayBuffer (transferred) has
// none, and a SharedArrayBuffer's can change under the native call from another thread. Each
// is a TypeError naming the key, on the hot path (check, peek, force, refund) and on the
// napi-rs methods (reset, reserve), and never the empty key that everyone else shares.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Limiter, Policy, ManualClock } = require('cellgate');

function detachedByStructuredClone() {
  const key = new Uint8Array([1, 2, 3]);
  structuredClone(key.buffer, { transfer: [key.buffer] });
  assert.equal(key.byteLength, 0, 'detached');
  return key;
}

function detachedByTransfer() {
  const key = Buffer.from(new Uint8Array([1, 2, 3]));
  key.buffer.transfer();
  assert.equal(key.byteLength, 0, 'detached');
  return key;
}

const DETACHED = [['structuredClone transfer', detachedByStructuredClone]];
if (typeof ArrayBuffer.prototype.transfer === 'function') DETACHED.push(['ArrayBuffer.prototype.transfer', detachedByTransfer]);

function assertKeyError(fn, pattern) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof TypeError, `${error.name}: ${error.message}`);
    assert.equal(error.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(error.message, /^key /);
    assert.match(error.message, pattern);
    return true;
  });
}

async function assertKeyRejects(promise, pattern) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof TypeError, `${error.name}: ${error.message}`);
    assert.equal(error.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(error.message, pattern);
    return true;
  });
}

const BAD_KEYS = [
  ...DETACHED.map(([how, make]) => [`a Uint8Array detached by ${how}`, make, /detached/]),
  ['a Uint8Array over a SharedArrayBuffer', () => new Uint8Array(new SharedArrayBuffer(3)), /SharedArrayBuffer/],
  ['an empty Uint8Array over a SharedArrayBuffer', () => new Uint8Array(new SharedArrayBuffer(0)), /SharedArrayBuffer/],
];

for (const [what, make, pattern] of BAD_KEYS) {
  test(`${what} is a TypeError on every Limiter operation, not the empty key`, async () => {
    const limiter = new Limiter('1/hour', { clock: new ManualClock() });
    for (const op of ['check', 'peek', 'force', 'refund', 'reset']) assertKeyError(() => limiter[op](make()), pattern);
    await assertKeyRejects(limiter.acquire(make()), pattern);
    const multi = new Limiter('1/hour; 2/day', { clock: new ManualClock() });
    for (const op of ['check', 'peek', 'force', 'refund', 'reset']) assertKeyError(() => multi[op](make()), pattern);
    assert.equal(limiter.check('').allowed, true, 'the empty key was never charged');
    assert.equal(multi.check(new Uint8Array(0)).allowed, true, 'the empty key was never charged');
  });

  test(`${what} is a TypeError on every Policy operation, reserve included`, async () => {
    const policy = new Policy([{ name: 'hourly', rate: '1/hour' }], { clock: new ManualClock() });
    for (const op of ['check', 'peek', 'force', 'refund', 'reset', 'reserve']) assertKeyError(() => policy[op](make()), pattern);
    await assertKeyRejects(policy.acquire(make()), pattern);
    assert.equal(policy.check('').allowed, true, 'the empty key was never charged');
  });
}

test('empty keys are still keys: "", an empty Buffer, an empty view of a non-empty buffer', () => {
  const limiter = new Limiter('2/hour', { clock: new ManualClock() });
  assert.equal(limiter.check('').remaining, 1);
  assert.equal(limiter.check(Buffer.alloc(0)).remaining, 0, 'the same key');
  assert.equal(limiter.peek(new Uint8Array(new ArrayBuffer(8), 8, 0)).remaining, 0);
  assert.equal(limiter.peek(new Uint8Array(0)).remaining, 0);
  assert.equal(limiter.check(Buffer.from('x').subarray(1)).allowed, false);
});

test('a key copied out of a SharedArrayBuffer is accepted, and is its bytes', () => {
  const limiter = new Limiter('1/hour', { clock: new ManualClock() });
  const shared = new Uint8Array(new SharedArrayBuffer(2));
  shared.set([0x68, 0x69]);
  assert.equal(limiter.check(Buffer.from(shared)).allowed, true);
  assert.equal(limiter.check('hi').allowed, false, 'the same key as the string');
});
