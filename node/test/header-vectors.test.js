'use strict';
// Replays testdata/headers (format: testdata/README.md, "Header vectors") through the public
// API: each scenario's limiter is built as a user would (a rate string and options, or Policy
// entries when the quotas are named or on dimensions), the steps are replayed on a
// ManualClock, and every decision field, reason, header byte in every style and 429 body must
// be exactly what core wrote (core/tests/header_vectors.rs replays the same file).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Limiter, Policy, ManualClock, headers, limitedBody } = require('cellgate');

const FILE = process.env.CELLGATE_HEADER_VECTORS || path.join(__dirname, '..', '..', 'testdata', 'headers', 'headers.json');
const NOW_UNIX_S = 1_700_000_000;
// JSON numbers are doubles: the vectors' 18446744073709551615 (never) reads as 2^64.
const NEVER_AS_NUMBER = 2 ** 64;
/** The vectors' style names and how `headers` is asked for each. */
const STYLES = {
  ietf: { style: 'ietf' },
  legacy: { style: 'legacy' },
  legacy_epoch: { style: 'legacy-epoch', nowUnixS: NOW_UNIX_S },
  anthropic: { style: 'anthropic', nowUnixS: NOW_UNIX_S },
  openai: { style: 'openai' },
  draft_6: { style: 'draft-6' },
  draft_7: { style: 'draft-7' },
};

/** The scenario's limiter, through the public API, on `clock`. */
function build(config, clock) {
  const quotas = config.quotas;
  const options = { clock };
  if (config.max_keys !== undefined) options.maxKeys = config.max_keys;
  if (config.on_full !== undefined) options.onFull = { deny: 'deny', allow_untracked: 'allowUntracked' }[config.on_full];
  const named = quotas.some((quota) => quota.name !== undefined || (quota.dimension || 0) !== 0);
  if (!named && (quotas.length === 1 || quotas.every((quota) => quota.burst === undefined))) {
    if (quotas.length === 1 && quotas[0].burst !== undefined) options.burst = quotas[0].burst;
    if (config.algorithm !== undefined) options.algorithm = config.algorithm;
    if (config.refill !== undefined) options.refill = config.refill;
    return { limiter: new Limiter(quotas.map((quota) => quota.rate).join('; '), options), policy: false };
  }
  assert.equal(config.refill === undefined || config.refill === 'greedy', true, 'a Policy refills greedily');
  const dimensions = config.dimensions || ['requests'];
  const entries = quotas.map((quota, index) => {
    assert.equal(typeof quota.name, 'string', `quota ${index}: a Policy entry is named`);
    const entry = { name: quota.name, rate: quota.rate, dimension: dimensions[quota.dimension || 0] };
    if (quota.burst !== undefined) entry.burst = quota.burst;
    return entry;
  });
  return { limiter: new Policy(entries, options), policy: true };
}

/** One step's decision. */
function apply({ limiter, policy }, step) {
  if (policy) {
    const costs = step.costs !== undefined ? step.costs : step.cost;
    if (step.op === 'reset') {
      limiter.reset(step.key);
      return limiter.peek(step.key, costs);
    }
    return limiter[step.op](step.key, costs);
  }
  const options = step.cost === undefined ? undefined : { cost: step.cost };
  if (step.op === 'reset') {
    limiter.reset(step.key);
    return limiter.peek(step.key, options);
  }
  return limiter[step.op](step.key, options);
}

/** What the decision of `step` differs in from its expectation: a list of messages. */
function differences(scenario, step, decision) {
  const expect = step.expect;
  const found = [];
  const same = (what, actual, expected) => {
    try {
      assert.deepEqual(actual, expected);
    } catch {
      found.push(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
    }
  };
  same('allowed', decision.allowed, expect.allowed);
  same('reason', decision.reason, expect.reason);
  same('remaining', decision.remaining, expect.remaining);
  if (expect.retry_after_ns === null) {
    same('retryAfterMs', decision.retryAfterMs, 0);
  } else {
    same('retryAfterMs', decision.retryAfterMs, expect.retry_after_ns >= NEVER_AS_NUMBER ? Infinity : expect.retry_after_ns / 1e6);
  }
  for (const [name, options] of Object.entries(STYLES)) {
    const expected = expect.headers[name];
    if (expected === undefined) {
      found.push(`headers.${name}: missing from the vector`);
      continue;
    }
    if (!Array.isArray(expected)) {
      // {"error": "invalid_name", "index": i}: quota i's name cannot be part of a header name.
      same(`headers.${name}`, expected.error, 'invalid_name');
      try {
        headers(decision, options);
        found.push(`headers.${name}: rendered, expected invalid_name for quota ${expected.index}`);
      } catch (error) {
        if (!(error instanceof RangeError) || !error.message.startsWith(`entries[${expected.index}].name: `)) {
          found.push(`headers.${name}: ${error.name} ${error.message}, expected a RangeError naming entries[${expected.index}].name`);
        }
      }
      continue;
    }
    same(`headers.${name}`, Object.entries(headers(decision, options)), expected);
  }
  if (expect.body !== null) same('body', limitedBody(decision), expect.body);
  return found.map((message) => `${scenario.name}, step at ${step.now_ns} (${step.op} ${step.key}): ${message}`);
}

/** Every difference of `scenario` from its expectations. */
function replay(scenario) {
  const clock = new ManualClock();
  const built = build(scenario.limiter, clock);
  const found = [];
  for (const step of scenario.steps) {
    clock.setNs(BigInt(step.now_ns));
    found.push(...differences(scenario, step, apply(built, step)));
  }
  return found;
}

const vectors = JSON.parse(fs.readFileSync(FILE, 'utf8'));

test('header vectors: format 1, and every style, reason and the full table covered', () => {
  assert.equal(vectors.format, 1);
  assert.ok(vectors.scenarios.length >= 10, `${vectors.scenarios.length} scenarios`);
  const reasons = new Set(vectors.scenarios.flatMap((scenario) => scenario.steps.map((step) => step.expect.reason)));
  assert.deepEqual([...reasons].sort(), ['limit', 'table_full', 'untracked']);
});

for (const scenario of vectors.scenarios) {
  test(`header vectors: ${scenario.name}`, () => {
    assert.deepEqual(replay(scenario), []);
  });
}

test('header vectors: a corrupted expected byte in any style or the body is found', () => {
  const scenario = vectors.scenarios.find((each) => each.steps.some((step) => step.expect.body !== null));
  const denied = scenario.steps.findIndex((step) => step.expect.body !== null);
  const corrupt = (change) => {
    const copy = structuredClone(scenario);
    change(copy.steps[denied].expect);
    return replay(copy);
  };
  const flip = (text) => text.slice(0, -1) + (text.endsWith('0') ? '1' : '0');
  assert.deepEqual(replay(scenario), [], 'the scenario itself passes');
  for (const style of Object.keys(STYLES)) {
    const found = corrupt((expect) => {
      const last = expect.headers[style][expect.headers[style].length - 1];
      last[1] = flip(last[1]);
    });
    assert.equal(found.length, 1, `${style}: ${found}`);
    assert.match(found[0], new RegExp(`headers\\.${style}`));
  }
  assert.match(corrupt((expect) => { expect.body = flip(expect.body.slice(0, -1)) + '}'; }).join(), /body/);
  assert.match(corrupt((expect) => { expect.reason = 'untracked'; }).join(), /reason/);
  assert.match(corrupt((expect) => { expect.remaining += 1; }).join(), /remaining/);
});
