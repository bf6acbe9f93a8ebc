'use strict';
// Replays testdata/vectors (format: testdata/README.md) through Redis with an explicit `nowNs`
// per step: single and keyed scenarios through a RedisLimiter built from the rate string,
// policy scenarios through one built from the entries. Every expected decision must come back
// from Redis (reason 'limit': Redis decided, not the outage policy). The scenarios the
// in-process test (vectors.test.js) cannot express are skipped here for the same reasons.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { RedisLimiter } = require('cellgate/redis');
// Redis expires a record in its own (real) time when the bucket is full again in the calls'
// time; with injected times that run far ahead of the real ones, an hour's grace keeps every
// record for the whole test (a backward step then still finds the bucket's last time).
const GRACE_MS = 3_600_000;
const { SKIP, clients, uniquePrefix } = require('./redis-support');

const DIR = process.env.CELLGATE_VECTORS || path.join(__dirname, '..', '..', 'testdata', 'vectors');
const NEVER = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const u64 = (value) => (value === 'never' ? NEVER : BigInt(value));
const ms = (value) => (u64(value) === NEVER ? Infinity : Number(u64(value)) / 1e6);

function unsupported(scenario) {
  if (scenario.initial_tokens !== undefined) return 'initial_tokens: every key starts full';
  const quotas = scenario.policy ? scenario.policy.map((entry) => entry.quota) : [scenario.quota];
  if (quotas.some((quota) => u64(quota.burst_cost) > MAX_SAFE)) return 'a burst above 2^53 - 1 is refused (a RangeError)';
  if (scenario.steps.some((step) => u64(step.now_ns) === NEVER)) return 'now_ns = 2^64 - 1: keyed tables clamp times to 2^64 - 2';
  return undefined;
}

function keyOf(step) {
  if (step.key_hex !== undefined) return Buffer.from(step.key_hex, 'hex');
  if (step.key !== undefined) return step.key;
  return 'cellgate-vectors';
}

function expectDecision(actual, expected, where) {
  assert.equal(actual.allowed, expected.allowed, `${where}: allowed`);
  assert.equal(actual.limit, Number(u64(expected.limit)), `${where}: limit`);
  assert.equal(actual.remaining, Number(u64(expected.remaining)), `${where}: remaining`);
  assert.equal(actual.retryAfterMs, ms(expected.retry_after_ns), `${where}: retryAfterMs`);
  assert.equal(actual.resetAfterMs, ms(expected.reset_after_ns), `${where}: resetAfterMs`);
}

function costOf(step, burst, where) {
  const cost = u64(step.cost);
  if (cost <= MAX_SAFE) return Number(cost);
  assert.ok(['check', 'peek', 'refund'].includes(step.op) && BigInt(burst) < MAX_SAFE, `${where}: cost ${cost} has no equivalent below 2^53`);
  return Number.MAX_SAFE_INTEGER;
}

async function replaySingle(client, scenario) {
  const burst = Number(u64(scenario.quota.burst_cost));
  const options = { client, burst, algorithm: scenario.algorithm, prefix: uniquePrefix('vectors'), outage: 'closed', expiryGraceMs: GRACE_MS };
  if (scenario.algorithm === 'token_bucket') options.refill = scenario.refill || 'greedy';
  const limiter = new RedisLimiter(scenario.quota.rate, options);
  for (const [index, step] of scenario.steps.entries()) {
    const where = `${scenario.name} step ${index} (${step.op})`;
    const at = { nowNs: u64(step.now_ns) };
    const key = keyOf(step);
    const cost = step.cost === undefined ? undefined : costOf(step, burst, where);
    let decision;
    if (step.op === 'reset') {
      await limiter.reset(key, at);
      if (step.expect) decision = await limiter.peek(key, 0, at);
    } else {
      decision = await limiter.apply(step.op, key, cost, at);
    }
    if (step.expect) {
      assert.equal(decision.reason, 'limit', `${where}: decided by Redis`);
      expectDecision(decision, step.expect, where);
    }
  }
  assert.equal(limiter.stats().errors, 0);
}

async function replayPolicy(client, scenario) {
  const entries = scenario.policy.map((entry) => ({ name: entry.name, rate: entry.quota.rate, burst: Number(u64(entry.quota.burst_cost)), dimension: `d${entry.dimension}` }));
  const limiter = new RedisLimiter(entries, { client, prefix: uniquePrefix('vectors'), outage: 'closed', expiryGraceMs: GRACE_MS });
  const dimensions = limiter.dimensions;
  const reservations = new Map();
  const costsOf = (step) => {
    const costs = {};
    step.costs.forEach((cost, index) => { costs[`d${index}`] = Number(u64(cost)); });
    return dimensions.map((name) => costs[name]);
  };
  for (const [index, step] of scenario.steps.entries()) {
    const where = `${scenario.name} step ${index} (${step.op})`;
    const at = { nowNs: u64(step.now_ns) };
    const key = keyOf(step);
    let decision;
    switch (step.op) {
      case 'reserve': {
        const reserved = await limiter.reserve(key, costsOf(step), at);
        decision = reserved.decision;
        if (reserved.reservation) reservations.set(step.reservation, reserved.reservation);
        else assert.equal(step.expect.allowed, false, `${where}: refused without a reservation`);
        break;
      }
      case 'settle': {
        const reservation = reservations.get(step.reservation);
        assert.ok(reservation, `${where}: reservation ${step.reservation}`);
        reservations.delete(step.reservation);
        decision = await limiter.settle(reservation, costsOf(step), at);
        assert.equal(reservation.pending, false);
        break;
      }
      case 'reset':
        await limiter.reset(key, at);
        if (step.expect) decision = await limiter.peek(key, dimensions.map(() => 0), at);
        break;
      default:
        decision = await limiter.apply(step.op, key, costsOf(step), at);
    }
    if (!step.expect) continue;
    const expect = step.expect;
    assert.equal(decision.reason, 'limit', `${where}: decided by Redis`);
    if (expect.decisions === undefined) {
      expectDecision(decision, expect, where);
      continue;
    }
    assert.equal(decision.allowed, expect.allowed, `${where}: allowed`);
    assert.equal(decision.binding, scenario.policy[expect.binding].name, `${where}: binding`);
    assert.equal(decision.decisions.length, expect.decisions.length, `${where}: decisions`);
    expect.decisions.forEach((entry, at) => expectDecision(decision.decisions[at], entry, `${where} entry ${at}`));
    const binding = expect.decisions[expect.binding];
    assert.equal(decision.remaining, Number(u64(binding.remaining)), `${where}: remaining`);
    assert.equal(decision.retryAfterMs, expect.allowed ? 0 : ms(binding.retry_after_ns), `${where}: retryAfterMs`);
  }
  assert.equal(limiter.stats().errors, 0);
}

test('every vector through Redis (explicit nowNs) gives the expected decisions', { skip: SKIP }, async (t) => {
  const connected = await clients();
  after(() => connected.forEach((each) => each.close()));
  // The vectors through ioredis; node-redis carries the same bytes (the differential test
  // runs both).
  const { client } = connected[0];
  let replayed = 0;
  const skipped = [];
  for (const file of fs.readdirSync(DIR).filter((name) => name.endsWith('.json')).sort()) {
    const document = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
    for (const scenario of document.scenarios) {
      const reason = unsupported(scenario);
      if (reason) {
        skipped.push(scenario.name);
        continue;
      }
      await t.test(`${file}: ${scenario.name}`, () => (scenario.policy ? replayPolicy(client, scenario) : replaySingle(client, scenario)));
      replayed += 1;
    }
  }
  assert.ok(replayed >= 40, `replayed ${replayed}`);
  assert.ok(skipped.length <= 10, `skipped ${skipped.join(', ')}`);
});
