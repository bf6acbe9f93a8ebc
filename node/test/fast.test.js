'use strict';
// The addon's hot path, called directly: the one plain Node-API function a native limiter
// makes (`fastFunction()`, every operation's entry point into core's `apply_at`), which reads
// the key in place and the operation and the cost from the shared array. They must decide exactly as the public methods do, reject
// what those reject with the same typed errors (the cost is checked again natively: a NaN
// must never become a free request), and change no state on an error.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Limiter, Policy, ManualClock } = require('cellgate');

const { native, LAYOUT, OPS: OP_NUMBERS, sharedArray } = require(path.join(path.dirname(require.resolve('cellgate/package.json')), 'lib', 'boundary.js'));

const { COSTS, OP, STATUS, REASON: REASON_SLOT, SUMMARY, ALLOWED, BINDING, MISSING_COST, COST_NOT_GIVEN } = LAYOUT;
const REASONS = ['limit', 'table_full', 'untracked'];
const OPS = ['check', 'peek', 'force', 'refund'];

/** A native limiter and its fast functions, over `clock` (a public ManualClock's native half). */
function nativeLimiter(rate, nativeClock) {
  const shared = sharedArray();
  const quotas = [{ rate, dimension: 0, argument: 'rate', nameArgument: 'rate' }];
  const limiter = new native.NativeLimiter(quotas, { refill: 'greedy', maxKeys: 64, onFull: 'deny', argument: 'rate' }, nativeClock, shared);
  const apply = limiter.fastFunction();
  const [limit] = limiter.limits();
  return {
    shared,
    limit,
    apply,
    run(op, key, cost) {
      shared[OP] = OP_NUMBERS[op];
      shared[COSTS] = cost;
      apply(key);
      return {
        allowed: shared[STATUS] === ALLOWED,
        reason: REASONS[shared[REASON_SLOT]],
        limit,
        remaining: shared[SUMMARY + 2],
        retryAfterMs: shared[SUMMARY + 3] / 1e6,
        resetAfterMs: shared[SUMMARY + 4] / 1e6,
      };
    },
  };
}

/** A native limiter of two dimensions (r: 2/second, t: 10/second) and its fast function. */
function nativePolicy() {
  const shared = sharedArray();
  const quotas = [
    { name: 'r', rate: '2/second', dimension: 0, argument: 'entries[0]', nameArgument: 'entries[0].name' },
    { name: 't', rate: '10/second', dimension: 1, argument: 'entries[1]', nameArgument: 'entries[1].name' },
  ];
  const limiter = new native.NativeLimiter(quotas, { refill: 'greedy', maxKeys: 64, onFull: 'deny', argument: 'entries' }, new native.NativeManualClock(0n), shared);
  shared[OP] = OP_NUMBERS.check;
  return { shared, check: limiter.fastFunction() };
}

function throwsCoded(fn, Type, code) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof Type, `${error.name}: ${error.message}`);
    assert.equal(error.code, code);
    return true;
  });
}

test('the fast function decides exactly as the public methods, for every operation and key type', () => {
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
  assert.deepEqual(bare.run('peek', 'k', 3), { allowed: true, reason: 'limit', limit: 3, remaining: 3, retryAfterMs: 0, resetAfterMs: 0 }, 'still full');
  assert.equal(bare.run('check', 'k', 3).allowed, true, 'the bucket was still full');
  assert.equal(bare.run('check', 'k', 2 ** 53 - 1).retryAfterMs, Infinity, 'the largest safe cost is a cost');
});

test('COST_NOT_GIVEN: core completes the cost (1 on a limiter; MISSING_COST on a policy of several dimensions)', () => {
  const bare = nativeLimiter('3/second', new native.NativeManualClock(0n));
  assert.equal(COST_NOT_GIVEN, -1);
  assert.equal(bare.run('check', 'k', COST_NOT_GIVEN).remaining, 2, 'DEFAULT_COST');
  const { shared, check } = nativePolicy();
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

test('an operation that is not one of core\'s is a RangeError and changes no state', () => {
  const bare = nativeLimiter('1/second', new native.NativeManualClock(0n));
  bare.shared[COSTS] = 1;
  for (const op of [5, -1, 0.5, NaN, Infinity]) {
    bare.shared[OP] = op;
    bare.shared[STATUS] = -1;
    throwsCoded(() => bare.apply('k'), RangeError, 'ERR_OUT_OF_RANGE');
    assert.equal(bare.shared[STATUS], -1, `op ${op} wrote no status`);
  }
  assert.equal(bare.run('check', 'k', 1).allowed, true, 'nothing was charged');
  assert.equal(bare.run('check', 'k', 1).allowed, false);
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
  const { shared, check } = nativePolicy();
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

// The header function: `(style, nowUnixS, count) => string`, the values of a known shape (its
// index in HEADER_SHAPE) whose names `headerShape(index)` gives. Put back together it must be
// exactly what napi-rs's `renderHeaders` renders (the whole `name\nvalue...` text), for every
// style, allowed and denied, one quota and several; the shapes a limiter's renderings repeat
// are remembered once each; bad arguments are typed errors.
const { HEADER_SHAPE, ENTRIES, ENTRY_SLOTS } = LAYOUT;

function pairsOf(text) {
  const parts = text.split('\n');
  const pairs = [];
  for (let index = 0; index < parts.length; index += 2) pairs.push([parts[index], parts[index + 1]]);
  return pairs;
}

test('the header function renders exactly what renderHeaders does, as the values of a remembered shape', () => {
  const shared = sharedArray();
  const quotas = [
    { rate: '3/second', dimension: 0, argument: 'a', nameArgument: 'a' },
    { rate: '100/minute', name: 'tokens_min', dimension: 1, argument: 'b', nameArgument: 'b' },
  ];
  const limiter = new native.NativeLimiter(quotas, { refill: 'greedy', maxKeys: 64, onFull: 'deny', argument: 'rate' }, undefined, shared);
  const render = limiter.headerFunction();
  const styles = native.headerStyles();
  const shapes = new Map();
  let rendered = 0;
  for (const count of [1, 2]) {
    for (const [allowed, remaining, retryAfterNs, resetAfterNs] of [[1, 2, 0, 5e8], [0, 0, 3e9, 9e9], [0, 0, Infinity, 1e9], [1, 3, 0, 0]]) {
      for (let entry = 0; entry < count; entry++) {
        shared.set([allowed, 3 + entry, remaining + entry, retryAfterNs, resetAfterNs], ENTRIES + ENTRY_SLOTS * entry);
      }
      for (let style = 0; style < styles.length; style++) {
        const whole = limiter.renderHeaders(style, 1_700_000_000, count);
        const values = render(style, 1_700_000_000, count);
        const shape = shared[HEADER_SHAPE];
        assert.ok(Number.isInteger(shape) && shape >= 0, `style ${styles[style]}: a shape, not ${shape}`);
        const names = limiter.headerShape(shape).split('\n');
        assert.deepEqual(names.map((name, index) => [name, values.split('\n')[index]]), pairsOf(whole), `${styles[style]}, ${count} entries`);
        if (shapes.has(names.join('\n'))) assert.equal(shapes.get(names.join('\n')), shape, 'a shape keeps its index');
        shapes.set(names.join('\n'), shape);
        rendered += 1;
      }
    }
  }
  assert.ok(rendered > 50 && shapes.size < rendered / 2, `shapes are reused: ${shapes.size} for ${rendered} renderings`);
  assert.equal(Math.max(...shapes.values()), shapes.size - 1, 'indices are dense');
  assert.throws(() => render(styles.length, 0, 1), { name: 'RangeError', message: /options\.style must be one of/ });
  assert.throws(() => render('ietf', 0, 1), { name: 'TypeError' });
  assert.throws(() => render(0, 0), { name: 'TypeError' });
  assert.throws(() => limiter.headerShape(shapes.size), /no shape/);
  for (const bad of [NaN, 1.5, -1, 2 ** 64, -Infinity]) {
    shared[ENTRIES + 2] = bad;
    assert.throws(() => render(0, 0, 1), { name: 'RangeError', message: /remaining is not a valid count/ }, String(bad));
  }
  shared[ENTRIES + 2] = 2 ** 64 - 2 ** 11;
  assert.match(render(0, 0, 1), /;r=18446744073709549568/, 'the largest double below 2^64 is a count');
});

test('headers() through the header function: a fresh, equal object per call, for Limiter, Policy and every style', () => {
  const { headers } = require('cellgate');
  const clock = new ManualClock();
  const limiter = new Limiter('2/second', { clock });
  const policy = new Policy([{ name: 'requests', rate: '2/second', dimension: 'requests' }, { name: 'tokens', rate: '50/minute', dimension: 'tokens' }], { clock });
  const decisions = [];
  for (let step = 0; step < 4; step++) {
    decisions.push(limiter.check('k'), policy.check('k', { requests: 1, tokens: 20 }));
    clock.advanceNs(100_000_000);
  }
  for (const decision of decisions) {
    for (const style of ['ietf', 'legacy', 'legacy-epoch', 'draft-6', 'draft-7', 'anthropic', 'openai']) {
      if (!native.headerStyles().includes(style)) continue;
      const first = headers(decision, { style, nowUnixS: 1_700_000_000 });
      const again = headers(decision, { style, nowUnixS: 1_700_000_000 });
      assert.deepEqual(again, first, 'the same decision renders the same headers');
      assert.notEqual(again, first, 'a new object each time (callers may mutate theirs)');
      assert.ok(Object.keys(first).length >= 2 && Object.values(first).every((value) => typeof value === 'string' && value.length > 0), JSON.stringify(first));
      if (!decision.allowed && style === 'ietf') assert.ok('Retry-After' in first);
    }
  }
});
