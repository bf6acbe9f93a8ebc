'use strict';
// Core's configuration and call rules, as Node applies them (the same as every runtime's):
// the default cost and the costs a multi-dimension call must name (resolve_costs,
// resolve_settle_costs), header names (check_names, default_quota_name) and the bounds of
// maxKeys (DEFAULT_MAX_KEYS, MAX_MAX_KEYS).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Limiter, Policy, ManualClock, headers } = require('cellgate');

function throwsTyped(fn, Type, pattern) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof Type, `${error.name}: ${error.message}`);
    assert.match(error.message, pattern);
    assert.equal(error.code, Type === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE');
    return true;
  });
}

function twoDimensions() {
  return new Policy([
    { name: 'rpm', rate: '10/minute' },
    { name: 'tpm', rate: '1000/minute', dimension: 'tokens' },
  ], { clock: new ManualClock() });
}

test('one dimension: a cost not named is core\'s default cost (1), in every form of costs', () => {
  const policy = new Policy([{ name: 'rpm', rate: '10/minute' }], { clock: new ManualClock() });
  assert.equal(policy.check('k').remaining, 9);
  assert.equal(policy.check('k', {}).remaining, 8, 'an object naming no dimension');
  assert.equal(policy.check('k', { requests: undefined }).remaining, 7);
  assert.equal(policy.check('k', [undefined]).remaining, 6);
  assert.equal(policy.check('k', { requests: 0 }).remaining, 6, '0 is a cost like any other');
  const { decision } = policy.reserve('k', {});
  assert.equal(decision.remaining, 5);
  const multi = new Limiter('10/minute; 100/day', { clock: new ManualClock() });
  assert.equal(multi.check('k').remaining, 9);
  assert.equal(multi.check('k', {}).remaining, 8);
});

test('several dimensions: a cost not named is a TypeError naming the dimension, and charges nothing', () => {
  const policy = twoDimensions();
  for (const op of ['check', 'peek', 'force', 'refund']) {
    throwsTyped(() => policy[op]('k', { requests: 1 }), TypeError, /^costs\.tokens must be/);
    throwsTyped(() => policy[op]('k', { tokens: 5 }), TypeError, /^costs\.requests must be/);
    throwsTyped(() => policy[op]('k'), TypeError, /^costs\.requests must be/);
    throwsTyped(() => policy[op]('k', [1, undefined]), TypeError, /^costs\[1\] must be/);
  }
  throwsTyped(() => policy.reserve('k', { requests: 1 }), TypeError, /^estimate\.tokens must be/);
  const decision = policy.peek('k', { requests: 0, tokens: 0 });
  assert.deepEqual(decision.decisions.map((entry) => entry.remaining), [10, 1000], 'nothing was charged');
});

test('several dimensions: acquire rejects with the TypeError naming options.costs', async () => {
  const policy = twoDimensions();
  await assert.rejects(policy.acquire('k', { costs: { tokens: 1 } }), (error) => {
    assert.ok(error instanceof TypeError);
    assert.equal(error.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(error.message, /^options\.costs\.requests must be/);
    return true;
  });
});

test('settle: a dimension not named keeps its estimate (core\'s resolve_settle_costs)', () => {
  const policy = twoDimensions();
  const { reservation } = policy.reserve('k', { requests: 1, tokens: 400 });
  const settled = policy.settle(reservation, { tokens: 100 });
  assert.deepEqual(settled.decisions.map((entry) => entry.remaining), [9, 900], 'the request stays charged');
  const again = policy.reserve('k', { requests: 2, tokens: 50 }).reservation;
  const exact = again.settle();
  assert.deepEqual(exact.decisions.map((entry) => entry.remaining), [7, 850], 'no actual costs: the estimate');
});

test('default header names are core\'s default_quota_name, as in Python', () => {
  const clock = new ManualClock();
  const multi = new Limiter('2/second; 3/day', { clock });
  assert.equal(multi.rate, '2/second; 3/86400 seconds');
  assert.equal(headers(multi.check('k'))['RateLimit-Policy'], '"2-in-1s";q=2;w=1,"3-in-1d";q=3;w=86400');
  const single = new Limiter('100/minute', { clock });
  assert.equal(headers(single.check('k'))['RateLimit-Policy'], '"100-in-1min";q=100;w=60');
  const odd = new Limiter('5/250ms; 500/7 days', { clock });
  assert.equal(headers(odd.check('k'))['RateLimit-Policy'], '"5-in-250ms";q=5;w=1,"500-in-7d";q=500;w=604800');
  const named = new Limiter('100/minute', { clock, name: 'api' });
  assert.equal(headers(named.check('k'))['RateLimit-Policy'], '"api";q=100;w=60');
});

test('header names are checked by core at construction: duplicates, empty, non-ASCII', () => {
  throwsTyped(() => new Limiter('10/s; 10/s'), RangeError, /^rate must be quotas with distinct header names.*repeats/);
  throwsTyped(() => new Limiter('10/s; 10/second'), RangeError, /^rate must be/);
  throwsTyped(() => new Limiter('10/s', { name: '' }), RangeError, /^options\.name must be/);
  throwsTyped(() => new Limiter('10/s', { name: 'caf\u00e9' }), RangeError, /^options\.name must be/);
  throwsTyped(() => new Limiter('10/s', { name: 5 }), TypeError, /^options\.name must be a string/);
  throwsTyped(() => new Policy([{ name: 'a', rate: '1/s' }, { name: 'b', rate: '2/s' }, { name: 'a', rate: '3/s' }]),
    RangeError, /^entries\[2\]\.name must be.*repeats name 0/);
  throwsTyped(() => new Policy(Array.from({ length: 9 }, (_, index) => ({ name: `q${index}`, rate: '1/s' }))), RangeError, /^entries\.length must be at most 8/);
  throwsTyped(() => new Limiter('1/s; 2/s; 3/s; 4/s; 5/s; 6/s; 7/s; 8/s; 9/s'), RangeError, /^rate must be at most 8 quotas/);
  throwsTyped(() => new Policy([{ name: 'a', rate: '1/s' }, { name: '', rate: '2/s' }]), RangeError, /^entries\[1\]\.name must be/);
});

test('maxKeys: core\'s bounds (1 to 2^27)', () => {
  throwsTyped(() => new Limiter('10/s', { maxKeys: 2 ** 27 + 1 }), RangeError, /^options\.maxKeys must be an integer from 1 to 134217728/);
  throwsTyped(() => new Policy([{ name: 'a', rate: '1/s' }], { maxKeys: 2 ** 27 + 1 }), RangeError, /^options\.maxKeys must be an integer from 1 to 134217728/);
  throwsTyped(() => new Limiter('10/s', { maxKeys: 0 }), RangeError, /^options\.maxKeys/);
  throwsTyped(() => new Limiter('10/s', { maxKeys: '5' }), TypeError, /^options\.maxKeys/);
  const limiter = new Limiter('10/s', { clock: new ManualClock() });
  assert.ok(limiter.stats().slots >= 100_000, 'the default is core\'s DEFAULT_MAX_KEYS (100 000)');
});
