'use strict';
// Replays testdata/vectors (format: testdata/README.md) through the public API: single-limiter
// and keyed scenarios through Limiter (one keyed table holding every key), policy scenarios
// through Policy, each on a ManualClock set to every step's now_ns.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Limiter, Policy, ManualClock } = require('cellgate');

const DIR = process.env.CELLGATE_VECTORS || path.join(__dirname, '..', '..', 'testdata', 'vectors');
const NEVER = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const u64 = (value) => {
  if (value === 'never') return NEVER;
  if (typeof value === 'number') {
    assert.ok(Number.isSafeInteger(value) && value >= 0, `vector integer ${value}`);
  }
  return BigInt(value);
};

/** What the binding reports for an expected nanosecond count: ns / 1e6, Infinity for never. */
const ms = (value) => (u64(value) === NEVER ? Infinity : Number(u64(value)) / 1e6);

/**
 * Scenarios the public API cannot express, each with the reason. The test fails if a
 * scenario is listed but no longer needs to be, or needs to be but is not listed.
 */
function unsupported(scenario) {
  if (scenario.initial_tokens !== undefined) return 'initial_tokens: every key of a Limiter starts full';
  const quotas = scenario.policy ? scenario.policy.map((entry) => entry.quota) : [scenario.quota];
  if (quotas.some((quota) => u64(quota.burst_cost) > MAX_SAFE)) return 'a burst above 2^53 - 1 is refused (a RangeError)';
  const times = scenario.steps.map((step) => u64(step.now_ns));
  if (times.some((t) => t === NEVER)) return 'now_ns = 2^64 - 1: keyed tables clamp times to 2^64 - 2';
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

function rateOf(quota) {
  // The vectors give the rate string and the burst; check the string means the same quota.
  return { rate: quota.rate, burst: Number(u64(quota.burst_cost)) };
}

/**
 * A step's cost. Costs are numbers up to 2^53 - 1 in JavaScript; a vector's larger cost is
 * replayed as 2^53 - 1 only where the semantics make the two the same decision: a check,
 * peek or refund of a cost above the burst (never admitted; refunded up to full).
 */
function costOf(step, burst, where) {
  const cost = u64(step.cost);
  if (cost <= MAX_SAFE) return Number(cost);
  assert.ok(['check', 'peek', 'refund'].includes(step.op) && BigInt(burst) < MAX_SAFE, `${where}: cost ${cost} has no equivalent below 2^53`);
  return Number.MAX_SAFE_INTEGER;
}

function replaySingle(scenario) {
  const clock = new ManualClock();
  const { rate, burst } = rateOf(scenario.quota);
  const algorithm = scenario.algorithm;
  const options = { clock, burst, algorithm, maxKeys: scenario.max_keys === undefined ? 1000 : scenario.max_keys };
  if (algorithm === 'token_bucket') options.refill = scenario.refill || 'greedy';
  const limiter = new Limiter(rate, options);
  scenario.steps.forEach((step, index) => {
    const where = `${scenario.name} step ${index} (${step.op})`;
    clock.setNs(u64(step.now_ns));
    const key = keyOf(step);
    const cost = step.cost === undefined ? undefined : { cost: costOf(step, burst, where) };
    let decision;
    switch (step.op) {
      case 'check': decision = limiter.check(key, cost); break;
      case 'peek': decision = limiter.peek(key, cost); break;
      case 'force': decision = limiter.force(key, cost); break;
      case 'refund': decision = limiter.refund(key, cost); break;
      case 'reset':
        limiter.reset(key);
        if (step.expect) decision = limiter.peek(key, { cost: 0 });
        break;
      default: assert.fail(`${where}: unknown op`);
    }
    if (step.expect) expectDecision(decision, step.expect, where);
  });
}

function replayPolicy(scenario) {
  const clock = new ManualClock();
  const entries = scenario.policy.map((entry) => ({ name: entry.name, ...rateOf(entry.quota), dimension: `d${entry.dimension}` }));
  const policy = new Policy(entries, { clock, maxKeys: 1000 });
  const dimensions = policy.dimensions;
  const reservations = new Map();
  const costsOf = (step) => {
    const costs = {};
    step.costs.forEach((cost, index) => { costs[`d${index}`] = Number(u64(cost)); });
    // The policy numbers dimensions by first appearance; the vectors by index.
    return dimensions.map((name) => costs[name]);
  };
  scenario.steps.forEach((step, index) => {
    const where = `${scenario.name} step ${index} (${step.op})`;
    clock.setNs(u64(step.now_ns));
    const key = keyOf(step);
    let decision;
    switch (step.op) {
      case 'check': decision = policy.check(key, costsOf(step)); break;
      case 'peek': decision = policy.peek(key, costsOf(step)); break;
      case 'force': decision = policy.force(key, costsOf(step)); break;
      case 'refund': decision = policy.refund(key, costsOf(step)); break;
      case 'reserve': {
        const reserved = policy.reserve(key, costsOf(step));
        decision = reserved.decision;
        if (reserved.reservation) reservations.set(step.reservation, reserved.reservation);
        else assert.equal(step.expect.allowed, false, `${where}: refused without a reservation`);
        break;
      }
      case 'settle': {
        const reservation = reservations.get(step.reservation);
        assert.ok(reservation, `${where}: reservation ${step.reservation}`);
        reservations.delete(step.reservation);
        decision = policy.settle(reservation, costsOf(step));
        assert.equal(reservation.pending, false);
        break;
      }
      case 'reset':
        policy.reset(key);
        if (step.expect) decision = policy.peek(key, dimensions.map(() => 0));
        break;
      default: assert.fail(`${where}: unknown op`);
    }
    if (!step.expect) return;
    const expect = step.expect;
    if (expect.decisions === undefined) {
      expectDecision(decision, expect, where);
      return;
    }
    assert.equal(decision.allowed, expect.allowed, `${where}: allowed`);
    assert.equal(decision.binding, scenario.policy[expect.binding].name, `${where}: binding`);
    assert.equal(decision.decisions.length, expect.decisions.length, `${where}: decisions`);
    expect.decisions.forEach((entry, at) => expectDecision(decision.decisions[at], entry, `${where} entry ${at}`));
    // The top-level numbers are the binding entry's (with no wait when allowed).
    const binding = expect.decisions[expect.binding];
    assert.equal(decision.remaining, Number(u64(binding.remaining)), `${where}: remaining`);
    assert.equal(decision.retryAfterMs, expect.allowed ? 0 : ms(binding.retry_after_ns), `${where}: retryAfterMs`);
  });
}

const files = fs.readdirSync(DIR).filter((name) => name.endsWith('.json')).sort();

test('the vectors directory holds vector files', () => {
  assert.ok(files.length >= 8, `${DIR}: ${files.length} files`);
});

let replayed = 0;
const skipped = [];
for (const file of files) {
  const document = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
  assert.equal(document.format, 1);
  for (const scenario of document.scenarios) {
    const reason = unsupported(scenario);
    test(`${file}: ${scenario.name}`, { skip: reason }, () => {
      if (scenario.policy) replayPolicy(scenario);
      else replaySingle(scenario);
      replayed += 1;
    });
    if (reason) skipped.push(scenario.name);
  }
}

test('most scenarios are replayed; the skipped ones are exactly those the API cannot express', () => {
  assert.ok(replayed >= 40, `replayed ${replayed}`);
  assert.ok(skipped.length <= 10, `skipped ${skipped.join(', ')}`);
});
