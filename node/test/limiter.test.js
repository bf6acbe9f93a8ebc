'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  Limiter, Policy, ManualClock, Decision, headers, limitedBody,
} = require('cellgate');

const plain = (decision) => ({ ...decision });

test('a decision is a plain object with the six documented fields', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('3/second', { clock });
  const decision = limiter.check('user:42');
  assert.deepEqual(Object.keys(decision), ['allowed', 'reason', 'limit', 'remaining', 'retryAfterMs', 'resetAfterMs']);
  assert.deepEqual(plain(decision), { allowed: true, reason: 'limit', limit: 3, remaining: 2, retryAfterMs: 0, resetAfterMs: 333.333334 });
  assert.ok(decision instanceof Decision);
  assert.equal(JSON.stringify(decision), '{"allowed":true,"reason":"limit","limit":3,"remaining":2,"retryAfterMs":0,"resetAfterMs":333.333334}');
});

test('burst, exact refill, and a denial that consumes nothing', () => {
  const clock = new ManualClock(5n);
  const limiter = new Limiter('3/second', { clock });
  assert.equal(limiter.check('k', { cost: 3 }).allowed, true);
  const denied = limiter.check('k');
  assert.deepEqual(plain(denied), { allowed: false, reason: 'limit', limit: 3, remaining: 0, retryAfterMs: 333.333334, resetAfterMs: 1000 });
  clock.advanceNs(333_333_333);
  assert.equal(limiter.check('k').allowed, false, 'one nanosecond early');
  clock.advanceNs(1n);
  assert.equal(limiter.check('k').allowed, true, 'exactly on time');
});

test('peek, force, refund and reset', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('2/second', { clock });
  assert.equal(limiter.peek('k', { cost: 2 }).remaining, 2);
  assert.equal(limiter.peek('k', { cost: 2 }).allowed, true);
  const forced = limiter.force('k', { cost: 3 });
  assert.equal(forced.allowed, false, 'did not fit: into debt');
  assert.equal(forced.remaining, 0);
  assert.equal(limiter.check('k').allowed, false);
  assert.equal(limiter.refund('k', { cost: 3 }).remaining, 2);
  limiter.check('k', { cost: 2 });
  limiter.reset('k');
  assert.equal(limiter.check('k', { cost: 2 }).allowed, true);
});

test('a cost above the burst is never admitted: retryAfterMs is Infinity', () => {
  const limiter = new Limiter('5/minute', { clock: new ManualClock() });
  const decision = limiter.check('k', { cost: 6 });
  assert.equal(decision.allowed, false);
  assert.equal(decision.retryAfterMs, Infinity);
  assert.equal(headers(decision)['Retry-After'], undefined);
  assert.equal(limitedBody(decision), '{"error":"rate_limited","retry_after":null}');
});

test('a key is its bytes: string, Buffer and Uint8Array agree; empty and NUL keys are distinct', () => {
  const limiter = new Limiter('1/hour', { clock: new ManualClock() });
  assert.equal(limiter.check('a').allowed, true);
  assert.equal(limiter.check(Buffer.from('a')).allowed, false);
  assert.equal(limiter.check(new Uint8Array([0x61])).allowed, false);
  assert.equal(limiter.check('a\u0000').allowed, true, 'a NUL byte makes another key');
  assert.equal(limiter.check('').allowed, true);
  assert.equal(limiter.check(Buffer.alloc(0)).allowed, false, 'the empty key, as bytes');
  assert.equal(limiter.check('é').allowed, true);
  assert.equal(limiter.check(Buffer.from('é', 'utf8')).allowed, false, 'UTF-8 bytes');
  assert.equal(limiter.check('😀').allowed, true);
  assert.equal(limiter.check(Buffer.from('😀')).allowed, false, 'a surrogate pair is one character');
  assert.equal(limiter.check('\uD800').allowed, true);
  assert.equal(limiter.check(Buffer.from('\uFFFD')).allowed, false, 'a lone surrogate is U+FFFD, as Buffer.from');
  const view = Buffer.from('xxbyy').subarray(2, 3);
  assert.equal(limiter.check('b').allowed, true);
  assert.equal(limiter.check(view).allowed, false, 'a view is its own bytes, not its buffer');
});

test('long keys (past the stack buffer) are whole keys', () => {
  const limiter = new Limiter('1/hour', { clock: new ManualClock() });
  for (const length of [125, 126, 127, 128, 300, 5000]) {
    const base = 'k'.repeat(length);
    assert.equal(limiter.check(base).allowed, true, `${length}`);
    assert.equal(limiter.check(Buffer.from(base)).allowed, false, `${length} as bytes`);
    assert.equal(limiter.check(`${base}x`).allowed, true, `${length} + 1 is another key`);
    const wide = 'é'.repeat(length);
    assert.equal(limiter.check(wide).allowed, true);
    assert.equal(limiter.check(Buffer.from(wide)).allowed, false, `${length} two-byte characters`);
    const cut = `${'k'.repeat(length)}😀`;
    assert.equal(limiter.check(cut).allowed, true);
    assert.equal(limiter.check(Buffer.from(cut)).allowed, false, `${length} then a surrogate pair`);
  }
});

test('token bucket with interval refill adds the rate at every period boundary', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('2/second', { clock, algorithm: 'token_bucket', refill: 'interval', burst: 4 });
  assert.equal(limiter.check('k', { cost: 4 }).allowed, true);
  clock.setNs(999_999_999n);
  assert.equal(limiter.check('k').allowed, false);
  clock.setNs(1_000_000_000n);
  assert.equal(limiter.check('k', { cost: 2 }).allowed, true);
  assert.equal(limiter.check('k').allowed, false);
});

test('several quotas are decided all-or-nothing, and headers describe each', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('2/second; 3/day', { clock });
  assert.equal(limiter.rate, '2/second; 3/86400 seconds');
  assert.equal(limiter.check('k', { cost: 2 }).allowed, true);
  clock.advance(1000);
  const denied = limiter.check('k', { cost: 2 });
  assert.equal(denied.allowed, false, 'the daily quota has 1 left');
  assert.equal(denied.limit, 3);
  assert.equal(limiter.check('k').allowed, true, 'nothing was charged by the denial');
  const all = headers(limiter.peek('k'));
  assert.equal(all['RateLimit-Policy'], '"2-in-1s";q=2;w=1,"3-in-1d";q=3;w=86400');
  assert.match(all.RateLimit, /^"2-in-1s";r=1;t=1,"3-in-1d";r=0;t=\d+$/);
});

test('headers in every style, rendered by the core', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('10/second', { clock, name: 'api' });
  const ok = limiter.check('k', { cost: 4 });
  assert.deepEqual(headers(ok), { 'RateLimit-Policy': '"api";q=10;w=1', RateLimit: '"api";r=6;t=1' });
  limiter.check('k', { cost: 6 });
  const denied = limiter.check('k', { cost: 5 });
  assert.deepEqual(headers(denied), { 'RateLimit-Policy': '"api";q=10;w=1', RateLimit: '"api";r=0;t=1', 'Retry-After': '1' });
  assert.deepEqual(headers(denied, { style: 'legacy' }), {
    'X-RateLimit-Limit': '10', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '1', 'Retry-After': '1',
  });
  assert.equal(headers(denied, { style: 'legacy-epoch', nowUnixS: 1_700_000_000 })['X-RateLimit-Reset'], '1700000001');
  assert.equal(limitedBody(denied), '{"error":"rate_limited","retry_after":1}');
  assert.deepEqual(headers(denied, { style: 'draft-6' }), {
    'RateLimit-Policy': '10;w=1', 'RateLimit-Limit': '10', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '1', 'Retry-After': '1',
  });
  assert.deepEqual(headers(denied, { style: 'draft-7' }), { 'RateLimit-Policy': '10;w=1', RateLimit: 'limit=10, remaining=0, reset=1', 'Retry-After': '1' });
  assert.throws(() => headers(denied, { style: 'draft-8' }), TypeError);
  assert.throws(() => headers({ ...denied }), TypeError, 'a copy has lost its quota');
});

test('a full table is a denial with reason table_full, and never evicts a live key', () => {
  // maxKeys 1 is one window of 16 slots: the 17th live key has no room.
  const limiter = new Limiter('1/hour', { clock: new ManualClock(), maxKeys: 1 });
  const admitted = [];
  let full = 0;
  for (let index = 0; index < 40; index++) {
    const decision = limiter.check(`k${index}`);
    if (decision.allowed) {
      assert.equal(decision.reason, 'limit');
      admitted.push(`k${index}`);
    } else {
      assert.equal(decision.reason, 'table_full');
      assert.equal(decision.limit, 1);
      assert.equal(decision.remaining, 0);
      assert.ok(decision.retryAfterMs > 0, 'a full table says when to retry');
      full += 1;
    }
  }
  assert.equal(admitted.length, 16);
  assert.equal(full, 24);
  for (const key of admitted) assert.equal(limiter.check(key).reason, 'limit', `${key} is still exhausted`);
  const counters = { liveKeys: 16, reclaimed: 0, rejectedFull: 24, admittedUntracked: 0 };
  assert.deepEqual(limiter.stats(), { ...counters, slots: 16, quotas: [{ name: limiter.stats().quotas[0].name, ...counters }] });
});

test('the monotonic clock is the default, and limiters are independent', () => {
  const a = new Limiter('1/hour');
  const b = new Limiter('1/hour');
  assert.equal(a.check('k').allowed, true);
  assert.equal(a.check('k').allowed, false);
  assert.equal(b.check('k').allowed, true);
  assert.ok(a.check('k').retryAfterMs > 3_599_000);
});

test('ManualClock: advance, advanceNs, setNs with numbers and bigints; nowNs is a bigint', () => {
  const clock = new ManualClock(10);
  assert.equal(clock.nowNs(), 10n);
  clock.advance(2);
  assert.equal(clock.nowNs(), 2_000_010n);
  clock.advanceNs(5n);
  clock.advanceNs(5);
  assert.equal(clock.nowNs(), 2_000_020n);
  clock.setNs((1n << 64n) - 2n);
  clock.advanceNs(10n);
  assert.equal(clock.nowNs(), (1n << 64n) - 1n, 'saturates');
  clock.setNs(3);
  assert.equal(clock.nowNs(), 3n, 'may go backwards');
});

test('Policy: dimensions, reserve and settle', () => {
  const clock = new ManualClock();
  const policy = new Policy([
    { name: 'rpm', rate: '60/minute' },
    { name: 'tpm', rate: '10000/minute', dimension: 'tokens' },
  ], { clock });
  assert.deepEqual(policy.dimensions, ['requests', 'tokens']);
  assert.deepEqual(policy.names, ['rpm', 'tpm']);
  const { decision, reservation } = policy.reserve('user:1', { requests: 1, tokens: 4000 });
  assert.equal(decision.allowed, true);
  assert.equal(decision.binding, 'rpm');
  assert.equal(reservation.pending, true);
  const settled = reservation.settle({ requests: 1, tokens: 6500 });
  assert.equal(reservation.pending, false);
  assert.equal(settled.decisions[1].remaining, 3500);
  assert.throws(() => policy.settle(reservation, { tokens: 1 }), RangeError, 'settles once');
  const refused = policy.reserve('user:1', { requests: 1, tokens: 5000 });
  assert.equal(refused.decision.allowed, false);
  assert.equal(refused.decision.binding, 'tpm');
  assert.equal(refused.reservation, null);
  assert.equal(policy.check('user:1', [1, 3500]).allowed, true, 'the refusal charged nothing');
  const other = new Policy([{ name: 'x', rate: '1/s' }], { clock });
  assert.throws(() => other.settle(reservation, 1), TypeError);
  assert.deepEqual(Object.keys(headers(settled)), ['RateLimit-Policy', 'RateLimit']);
});

test('Policy: a cost-0 entry in debt does not refuse', () => {
  const clock = new ManualClock();
  const policy = new Policy([
    { name: 'requests', rate: '10/second' },
    { name: 'output', rate: '100/second', dimension: 'output' },
  ], { clock });
  policy.force('k', { requests: 0, output: 150 });
  assert.equal(policy.check('k', { requests: 0, output: 1 }).allowed, false, 'output is in debt');
  assert.equal(policy.check('k', { requests: 1, output: 0 }).allowed, true, 'a request without output');
});

test('clientKey: one key per IPv4 address and per IPv6 /56, whatever the spelling', () => {
  const { clientKey } = require('cellgate');
  assert.deepEqual(clientKey('[2001:db8:aa:bb::1]:8080'), clientKey('2001:DB8:AA:CC:0:0:0:7'));
  assert.deepEqual([...clientKey('2001:db8:aa:bb::1')], [6, 56, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00]);
  assert.notDeepEqual(clientKey('2001:db8:aa:bb::1', { ipv6PrefixLen: 64 }), clientKey('2001:db8:aa:cc::1', { ipv6PrefixLen: 64 }));
  assert.deepEqual(clientKey('::ffff:192.0.2.1'), clientKey('192.0.2.1:443'));
  assert.deepEqual([...clientKey('192.0.2.1')], [4, 192, 0, 2, 1]);
  assert.throws(() => clientKey('not an address'), RangeError);
  assert.throws(() => clientKey('::1', { ipv6PrefixLen: 0 }), RangeError);
  assert.throws(() => clientKey('::1', { ipv6PrefixLen: 129 }), RangeError);
  assert.throws(() => clientKey(1), TypeError);
});

test('a burst per quota in a list: (burst N)', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('10/s (burst 20); 1000/day', { clock });
  assert.equal(limiter.check('k', { cost: 20 }).allowed, true);
  assert.equal(limiter.check('k').allowed, false);
  assert.equal(limiter.rate, '10/second (burst 20); 1000/86400 seconds');
});

test('a flood of 100,000 new keys into maxKeys 1000 under 1/hour returns decisions; the exhausted key stays denied', () => {
  const limiter = new Limiter('1/hour', { clock: new ManualClock(), maxKeys: 1000 });
  assert.equal(limiter.check('victim').allowed, true);
  assert.equal(limiter.check('victim').allowed, false);
  const reasons = { limit: 0, table_full: 0, untracked: 0 };
  for (let index = 0; index < 100_000; index++) {
    const decision = limiter.check(`flood:${index}`);
    reasons[decision.reason] += 1;
    if (decision.reason === 'table_full') {
      assert.equal(decision.allowed, false);
      assert.ok(decision.retryAfterMs > 0 && decision.retryAfterMs !== Infinity, `${decision.retryAfterMs}`);
    }
  }
  assert.equal(reasons.untracked, 0, 'onFull defaults to deny');
  assert.ok(reasons.table_full > 90_000, `most of the flood found no room: ${JSON.stringify(reasons)}`);
  assert.ok(reasons.limit >= 1000, `every key that fit was admitted: ${JSON.stringify(reasons)}`);
  const victim = limiter.check('victim');
  assert.equal(victim.allowed, false, 'the exhausted key was not evicted');
  assert.equal(victim.reason, 'limit');
  assert.equal(limiter.stats().rejectedFull, reasons.table_full);
  assert.match(limitedBody(limiter.check('flood:fresh')), /^\{"error":"rate_limited","retry_after":\d+\}$/);
});

test("onFull 'allowUntracked': a new key that finds no room is admitted untracked and counted", () => {
  const limiter = new Limiter('1/hour', { clock: new ManualClock(), maxKeys: 1000, onFull: 'allowUntracked' });
  assert.equal(limiter.check('victim').allowed, true);
  const reasons = { limit: 0, table_full: 0, untracked: 0 };
  for (let index = 0; index < 100_000; index++) {
    const decision = limiter.check(`flood:${index}`);
    reasons[decision.reason] += 1;
    assert.equal(decision.allowed, true, 'a fresh key under 1/hour fits, tracked or not');
  }
  assert.equal(reasons.table_full, 0);
  assert.ok(reasons.untracked > 90_000, JSON.stringify(reasons));
  const victim = limiter.check('victim');
  assert.deepEqual([victim.allowed, victim.reason], [false, 'limit'], 'the exhausted key stays denied');
  assert.equal(limiter.stats().admittedUntracked, reasons.untracked);
  const untracked = limiter.check('flood:again');
  assert.equal(untracked.reason, 'untracked');
  assert.equal(headers(untracked)['RateLimit-Policy'], '"1-in-1h";q=1;w=3600');
});

test('a Policy answers a full table as a decision too, under either onFull', () => {
  const entries = [{ name: 'r', rate: '1/hour' }, { name: 't', rate: '100/hour', dimension: 'tokens' }];
  const deny = new Policy(entries, { clock: new ManualClock(), maxKeys: 1 });
  const allow = new Policy(entries, { clock: new ManualClock(), maxKeys: 1, onFull: 'allowUntracked' });
  const seen = { deny: new Set(), allow: new Set() };
  for (let index = 0; index < 40; index++) {
    seen.deny.add(deny.check(`k${index}`, { requests: 1, tokens: 1 }).reason);
    seen.allow.add(allow.check(`k${index}`, { requests: 1, tokens: 1 }).reason);
  }
  assert.deepEqual([...seen.deny].sort(), ['limit', 'table_full']);
  assert.deepEqual([...seen.allow].sort(), ['limit', 'untracked']);
  const full = deny.check('fresh', { requests: 1, tokens: 1 });
  assert.deepEqual([full.allowed, full.reason, full.decisions.length], [false, 'table_full', 2]);
  assert.equal(deny.stats()[0].rejectedFull > 0, true);
});

test('stats() of a limiter of several quotas reports every quota\'s table (issue 12)', () => {
  const limiter = new Limiter('2/s; 1000/day', { maxKeys: 16 });
  for (let index = 0; index < 3; index++) limiter.check('a');
  limiter.check('b');
  const stats = limiter.stats();
  assert.equal(stats.quotas.length, 2, 'one entry per quota');
  const names = stats.quotas.map((each) => each.name);
  assert.equal(new Set(names).size, 2, `two distinct names: ${names}`);
  for (const each of stats.quotas) {
    assert.equal(typeof each.name, 'string');
    assert.equal(each.liveKeys, 2, `quota ${each.name} holds both keys`);
    assert.equal(each.rejectedFull, 0);
  }
  assert.equal(stats.liveKeys, 2, 'the top-level counters stay the first quota\'s');
  assert.ok(stats.slots >= 16, 'each table has room for maxKeys');
});
