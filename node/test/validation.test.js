'use strict';
// Numbers from JavaScript: NaN, ±Infinity, negatives, fractions and values above 2^53 - 1
// are TypeError or RangeError naming the argument, and change no state.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Limiter, Policy, ManualClock } = require('cellgate');

const BAD_NUMBERS = [NaN, Infinity, -Infinity, -1, 0.5, 1.5, 2 ** 53, 2 ** 64, -0.1];
const BAD_TYPES = ['1', null, true, {}, [], () => 1, Symbol('x')];

function throwsTyped(fn, Type, pattern) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof Type, `${error.name}: ${error.message}`);
    assert.match(error.message, pattern);
    assert.equal(error.code, Type === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE');
    return true;
  });
}

test('bad costs throw and change no state', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('3/second', { clock });
  for (const op of ['check', 'peek', 'force', 'refund']) {
    for (const cost of BAD_NUMBERS) throwsTyped(() => limiter[op]('k', { cost }), RangeError, /options\.cost/);
    for (const cost of BAD_TYPES) throwsTyped(() => limiter[op]('k', { cost }), TypeError, /options\.cost/);
    throwsTyped(() => limiter[op]('k', { cost: 1n }), TypeError, /options\.cost/);
    throwsTyped(() => limiter[op]('k', 1), TypeError, /options/);
  }
  assert.equal(limiter.check('k', { cost: 3 }).allowed, true, 'the bucket is still full');
});

test('bad keys throw TypeError and change no state', () => {
  const limiter = new Limiter('1/second', { clock: new ManualClock() });
  for (const key of [undefined, null, 1, 1n, {}, [], new Uint16Array(2), new ArrayBuffer(2), Symbol('k')]) {
    for (const op of ['check', 'peek', 'force', 'refund', 'reset']) {
      throwsTyped(() => limiter[op](key), TypeError, /key/);
    }
  }
  assert.equal(limiter.check('k').allowed, true);
});

test('bad times throw; bigint is accepted for nanoseconds', () => {
  const clock = new ManualClock();
  for (const value of BAD_NUMBERS) {
    throwsTyped(() => clock.advance(value), RangeError, /ms/);
    throwsTyped(() => clock.advanceNs(value), RangeError, /ns/);
    throwsTyped(() => clock.setNs(value), RangeError, /ns/);
    throwsTyped(() => new ManualClock(value), RangeError, /startNs/);
  }
  throwsTyped(() => clock.advanceNs(-1n), RangeError, /ns/);
  throwsTyped(() => clock.setNs(1n << 64n), RangeError, /ns/);
  throwsTyped(() => clock.advance(1n), TypeError, /ms/);
  throwsTyped(() => clock.setNs('5'), TypeError, /ns/);
  assert.equal(clock.nowNs(), 0n, 'no state changed');
  clock.setNs((1n << 64n) - 1n);
  assert.equal(clock.nowNs(), (1n << 64n) - 1n);
});

test('bad construction options throw typed errors naming the option', () => {
  throwsTyped(() => new Limiter(10), TypeError, /rate/);
  throwsTyped(() => new Limiter('10/fortnight'), RangeError, /unknown time unit "fortnight"/);
  throwsTyped(() => new Limiter('0/second'), RangeError, /rate/);
  throwsTyped(() => new Limiter('10/s', { burst: 0 }), RangeError, /burst/);
  throwsTyped(() => new Limiter('10/s', { burst: 1.5 }), RangeError, /burst/);
  throwsTyped(() => new Limiter('10/s', { burst: NaN }), RangeError, /burst/);
  throwsTyped(() => new Limiter('10/s', { maxKeys: 0 }), RangeError, /maxKeys/);
  throwsTyped(() => new Limiter('10/s', { maxKeys: 1e12 }), RangeError, /maxKeys/);
  throwsTyped(() => new Limiter('10/s', { algorithm: 'leaky' }), TypeError, /algorithm/);
  throwsTyped(() => new Limiter('10/s', { refill: 'interval' }), TypeError, /refill/);
  throwsTyped(() => new Limiter('10/s', { clock: {} }), TypeError, /clock/);
  throwsTyped(() => new Limiter('10/s', { name: 'bad\nname' }), RangeError, /name/);
  throwsTyped(() => new Limiter('10/s; 1/day', { burst: 5 }), TypeError, /burst/);
  throwsTyped(() => new Limiter('9007199254740993/ns'), RangeError, /2\^53/);
  throwsTyped(() => new Limiter('10/s', 5), TypeError, /options/);
});

test('Policy costs are validated completely before anything is charged', () => {
  const policy = new Policy([
    { name: 'a', rate: '2/second' },
    { name: 'b', rate: '2/second', dimension: 'tokens' },
  ], { clock: new ManualClock() });
  throwsTyped(() => policy.check('k', { requests: 1, tokens: NaN }), RangeError, /costs\.tokens/);
  throwsTyped(() => policy.check('k', { requests: 2, tokens: -1 }), RangeError, /costs\.tokens/);
  throwsTyped(() => policy.check('k', { bogus: 1 }), RangeError, /costs/);
  throwsTyped(() => policy.check('k', [1]), RangeError, /length/);
  throwsTyped(() => policy.check('k', 1), TypeError, /costs/);
  throwsTyped(() => policy.check('k'), TypeError, /costs/);
  assert.equal(policy.check('k', { requests: 2, tokens: 2 }).allowed, true, 'nothing was charged');
  throwsTyped(() => new Policy([]), TypeError, /entries/);
  throwsTyped(() => new Policy([{ name: 'a', rate: '1/s' }, { name: 'a', rate: '2/s' }]), RangeError, /distinct/);
  throwsTyped(() => new Policy([{ name: 'a', rate: 5 }]), TypeError, /rate/);
  throwsTyped(() => new Policy(Array.from({ length: 9 }, (_, i) => ({ name: `q${i}`, rate: '1/s' }))), RangeError, /entries/);
});

test('headers: a style that is an Object.prototype name is a TypeError naming options.style', () => {
  const { headers } = require('cellgate');
  const decision = new Limiter('3/second', { clock: new ManualClock() }).check('k');
  for (const style of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf']) {
    throwsTyped(() => headers(decision, { style }), TypeError, /^options\.style must be/);
  }
});

test('headers: a decision with a mutated field is a typed error naming the field', () => {
  const { headers } = require('cellgate');
  const limiter = new Limiter('3/second', { clock: new ManualClock() });
  const mutations = [
    ['remaining', -1, RangeError], ['remaining', 0.5, RangeError], ['remaining', NaN, RangeError],
    ['remaining', Infinity, RangeError], ['remaining', 2 ** 53, RangeError],
    ['remaining', '2', TypeError], ['remaining', undefined, TypeError], ['remaining', 2n, TypeError],
    ['limit', -3, RangeError], ['limit', '3', TypeError], ['limit', null, TypeError],
    ['allowed', 'yes', TypeError], ['allowed', 1, TypeError],
  ];
  for (const [field, value, Type] of mutations) {
    const decision = limiter.peek('k');
    decision[field] = value;
    throwsTyped(() => headers(decision), Type, new RegExp(`^decision\\.${field} must be`));
    throwsTyped(() => headers(decision, { style: 'legacy' }), Type, new RegExp(`^decision\\.${field} must be`));
  }
  const policy = new Policy([{ name: 'a', rate: '3/second' }], { clock: new ManualClock() });
  const decision = policy.peek('k');
  decision.remaining = -1;
  throwsTyped(() => headers(decision), RangeError, /^decision\.remaining must be/);
});
