'use strict';
// The addon's hot path, called directly: the four plain Node-API functions a native limiter
// makes (`fastFunctions()`, one compiled copy per operation), which read the key in place and
// the cost from the shared array. They must decide exactly as the public methods do, reject
// what those reject with the same typed errors (the cost is checked again natively: a NaN
// must never become a free request), and change no state on an error.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Limiter, Policy, ManualClock } = require('cellgate');

const { native, LAYOUT, sharedArray } = require(path.join(path.dirname(require.resolve('cellgate/package.json')), 'lib', 'native.js'));

const { COSTS, STATUS, ENTRIES, ALLOWED, BINDING, MISSING_COST, COST_NOT_GIVEN } = LAYOUT;
const OPS = ['check', 'peek', 'force', 'refund'];

/** A native limiter and its fast functions, over `clock` (a public ManualClock's native half). */
function nativeLimiter(rate, nativeClock) {
  const shared = sharedArray();
  const limiter = new native.NativeLimiter(rate, undefined, 'greedy', 64, nativeClock, shared, 'default');
  const [check, peek, force, refund] = limiter.fastFunctions();
  const fns = { check, peek, force, refund };
  return {
    shared,
    limit: limiter.limit,
    run(op, key, cost) {
      shared[COSTS] = cost;
      fns[op](key);
      return {
        allowed: shared[STATUS] === ALLOWED,
        limit: limiter.limit,
        remaining: shared[ENTRIES + 2],
        retryAfterMs: shared[ENTRIES + 3] / 1e6,
        resetAfterMs: shared[ENTRIES + 4] / 1e6,
      };
    },
  };
}

function throwsCoded(fn, Type, code) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof Type, `${error.name}: ${error.message}`);
    assert.equal(error.code, code);
    return true;
  });
}

test('every fast function decides exactly as the public method, for every key type', () => {
  // Two limiters on one time line: the public one and the bare native one.
  const clock = new ManualClock();
  const nativeClock = new native.NativeManualClock(0n);
  const limiter = new Limiter('5/second', { clock });
  const bare = nativeLimiter('5/second', nativeClock);
  const keys = ['k', Buffer.from('k'), new Uint8Array([0x6b]), Buffer.from('xxkyy').subarray(2, 3), 'é', '\uD800', '😀', 'x'.repeat(300), ''];
  let state = 12345;
  const random = (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  for (let step = 0; step < 2000; step++) {
    const op = OPS[random(4)];
    const key = keys[random(keys.length)];
    const cost = random(8);
    const expected = limiter[op](key, { cost });
    assert.deepEqual(bare.run(op, key, cost), { ...expected }, `step ${step}: ${op}(${String(key).slice(0, 8)}, ${cost})`);
    const advance = BigInt(random(3) * 50_000_000);
    clock.advanceNs(advance);
    nativeClock.advanceNs(advance);
  }
});

test('a bad cost in the shared array is a RangeError and changes no state', () => {
  const clock = new native.NativeManualClock(0n);
  const bare = nativeLimiter('3/second', clock);
  for (const op of OPS) {
    // -1 is COST_NOT_GIVEN (below); any other negative is no cost.
    for (const cost of [NaN, Infinity, -Infinity, -2, -0.5, 0.5, 1.5, 2 ** 53, 2 ** 64]) {
      bare.shared[STATUS] = -1;
      throwsCoded(() => bare.run(op, 'k', cost), RangeError, 'ERR_OUT_OF_RANGE');
      assert.equal(bare.shared[STATUS], -1, `${op}(${cost}) wrote no status`);
    }
  }
  assert.deepEqual(bare.run('peek', 'k', 3), { allowed: true, limit: 3, remaining: 3, retryAfterMs: 0, resetAfterMs: 0 }, 'still full');
  assert.equal(bare.run('check', 'k', 3).allowed, true, 'the bucket was still full');
  assert.equal(bare.run('check', 'k', 2 ** 53 - 1).retryAfterMs, Infinity, 'the largest safe cost is a cost');
});

test('COST_NOT_GIVEN: core completes the cost (1 on a limiter; MISSING_COST on a policy of several dimensions)', () => {
  const bare = nativeLimiter('3/second', new native.NativeManualClock(0n));
  assert.equal(COST_NOT_GIVEN, -1);
  assert.equal(bare.run('check', 'k', COST_NOT_GIVEN).remaining, 2, 'DEFAULT_COST');
  const shared = sharedArray();
  const entries = [{ name: 'r', rate: '2/second', dimension: 0 }, { name: 't', rate: '10/second', dimension: 1 }];
  const policy = new native.NativePolicy(entries, 64, new native.NativeManualClock(0n), shared);
  const [check] = policy.fastFunctions();
  for (const [requests, tokens, missing] of [[1, COST_NOT_GIVEN, 1], [COST_NOT_GIVEN, 1, 0], [COST_NOT_GIVEN, COST_NOT_GIVEN, 0]]) {
    shared[COSTS] = requests;
    shared[COSTS + 1] = tokens;
    check('k');
    assert.equal(shared[STATUS], MISSING_COST);
    assert.equal(shared[BINDING], missing, 'the first dimension without a cost');
  }
  shared[COSTS] = 2;
  shared[COSTS + 1] = 10;
  check('k');
  assert.equal(shared[STATUS], ALLOWED, 'nothing was charged by the refusals');
});

test('a bad key is a TypeError and changes no state', () => {
  const clock = new native.NativeManualClock(0n);
  const bare = nativeLimiter('1/second', clock);
  const bad = [undefined, null, 1, 1n, true, {}, [], new Uint16Array(2), new Int8Array(2), new Float64Array(1), new ArrayBuffer(2), new DataView(new ArrayBuffer(2)), Symbol('k'), () => 'k'];
  for (const op of OPS) {
    for (const key of bad) throwsCoded(() => bare.run(op, key, 1), TypeError, 'ERR_INVALID_ARG_TYPE');
  }
  assert.equal(bare.run('check', 'k', 1).allowed, true, 'nothing was charged');
  assert.equal(bare.run('check', Buffer.from('k'), 1).allowed, false);
});

test('a policy fast function rejects a bad cost in any dimension and charges nothing', () => {
  const shared = sharedArray();
  const entries = [{ name: 'r', rate: '2/second', dimension: 0 }, { name: 't', rate: '10/second', dimension: 1 }];
  const policy = new native.NativePolicy(entries, 64, new native.NativeManualClock(0n), shared);
  const [check] = policy.fastFunctions();
  for (const bad of [NaN, Infinity, -2, 0.5, 2 ** 53]) {
    for (const [requests, tokens] of [[1, bad], [bad, 1]]) {
      shared[COSTS] = requests;
      shared[COSTS + 1] = tokens;
      shared[STATUS] = -1;
      throwsCoded(() => check('k'), RangeError, 'ERR_OUT_OF_RANGE');
      assert.equal(shared[STATUS], -1, 'no status was written');
    }
  }
  shared[COSTS] = 2;
  shared[COSTS + 1] = 10;
  check('k');
  assert.equal(shared[STATUS], ALLOWED, 'nothing was charged: the whole burst of both fits');
  check(Buffer.from('k'));
  assert.notEqual(shared[STATUS], ALLOWED, 'and now it is spent, under the same key as bytes');
});

test('the monotonic clock advances in nanoseconds with real time and never goes back', async () => {
  const first = native.monotonicNowNs();
  let previous = first;
  for (let index = 0; index < 1000; index++) {
    const now = native.monotonicNowNs();
    assert.ok(now >= previous);
    previous = now;
  }
  const limiter = new Limiter('1/40 ms');
  assert.equal(limiter.check('k').allowed, true);
  const denied = limiter.check('k');
  assert.equal(denied.allowed, false);
  assert.ok(denied.retryAfterMs > 0 && denied.retryAfterMs <= 40, `${denied.retryAfterMs}`);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 60));
  const elapsedNs = native.monotonicNowNs() - first;
  const measuredMs = performance.now() - started;
  assert.ok(Number(elapsedNs) >= measuredMs * 1e6 * 0.9, `${elapsedNs} ns over ${measuredMs} ms`);
  assert.equal(limiter.check('k').allowed, true, 'admitted again after the wait');
});

test('a string key is exactly its UTF-8 (Buffer.from), for random strings around the stack buffer', () => {
  const limiter = new Limiter('1/hour', { clock: new ManualClock(), maxKeys: 20_000 });
  const pieces = ['a', 'é', '€', '😀', '\uD800', '\uDC00', '\u0000', '\uFFFF'];
  let state = 7;
  const random = (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  for (let index = 0; index < 3000; index++) {
    let key = `${index}:`;
    const target = [0, 5, 60, 80, 83, 84, 120, 248, 249, 250, 251, 252, 253, 256, 400][random(15)];
    while (Buffer.byteLength(key) < target) key += pieces[random(pieces.length)];
    assert.equal(limiter.check(key).allowed, true, `${index}: a new key`);
    assert.equal(limiter.check(Buffer.from(key)).allowed, false, `${index}: the same bytes (${Buffer.byteLength(key)})`);
  }
});
