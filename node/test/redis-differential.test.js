'use strict';
// Seeded random schedules (quotas, costs, operations, times with backward steps, several keys)
// run side by side on the in-process Limiter / Policy (a ManualClock) and on a RedisLimiter
// (the same times as `nowNs`), decision for decision, over ioredis and over node-redis; every
// other seed with `blockMs` (the block after a denial, written by the script).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { Limiter, Policy, ManualClock } = require('cellgate');
const { RedisLimiter } = require('cellgate/redis');
// Redis expires a record in its own (real) time when the bucket is full again in the calls'
// time; with injected times that run far ahead of the real ones, an hour's grace keeps every
// record for the whole test (a backward step then still finds the bucket's last time).
const GRACE_MS = 3_600_000;
const { SKIP, clients, seeded, uniquePrefix } = require('./redis-support');

const RATES = ['3/second', '10/minute', '7/2 seconds', '100/hour', '1/second', '5/100 milliseconds'];
const STEPS = 300;
const SEEDS = [1, 2, 3, 4, 5, 6];

function same(local, remote, where) {
  assert.equal(remote.reason, 'limit', `${where}: decided by Redis`);
  for (const field of ['allowed', 'limit', 'remaining', 'retryAfterMs', 'resetAfterMs', 'binding']) {
    assert.equal(remote[field], local[field], `${where}: ${field}`);
  }
  assert.deepEqual(remote.decisions, local.decisions, `${where}: decisions`);
}

/** The next time: mostly forward (0 to 400 ms), sometimes backward (a clock step). */
function nextTime(random, now) {
  const step = BigInt(random(400_000_000));
  if (random(10) === 0) return now > step ? now - step : 0n;
  return now + step;
}

async function singleSchedule(client, seed) {
  const random = seeded(seed);
  const rate = RATES[random(RATES.length)];
  const burst = 1 + random(6);
  const tokenBucket = random(3) === 0;
  const options = { burst, algorithm: tokenBucket ? 'token_bucket' : 'gcra', blockMs: seed % 2 === 0 ? 1 + random(2000) : 0 };
  if (tokenBucket) options.refill = random(2) === 0 ? 'interval' : 'greedy';
  const clock = new ManualClock();
  const local = new Limiter(rate, { ...options, clock, maxKeys: 1000 });
  const remote = new RedisLimiter(rate, { ...options, client, prefix: uniquePrefix('differential'), outage: 'closed', expiryGraceMs: GRACE_MS });
  const ops = ['check', 'check', 'check', 'peek', 'force', 'refund', 'reset'];
  let now = BigInt(random(1_000_000_000));
  for (let index = 0; index < STEPS; index++) {
    now = nextTime(random, now);
    clock.setNs(now);
    const op = ops[random(ops.length)];
    const key = `k${random(3)}`;
    const cost = random(burst + 3);
    const where = `seed ${seed} (${rate}, ${JSON.stringify(options)}) step ${index}: ${op} ${key} cost ${cost} at ${now}`;
    if (op === 'reset') {
      local.reset(key);
      await remote.reset(key, { nowNs: now });
      same(local.peek(key, { cost: 0 }), await remote.peek(key, 0, { nowNs: now }), where);
      continue;
    }
    same(local[op](key, { cost }), await remote.apply(op, key, cost, { nowNs: now }), where);
  }
  assert.equal(remote.stats().remote > STEPS, true);
}

async function policySchedule(client, seed) {
  const random = seeded(seed * 7919);
  const entries = [
    { name: 'rpm', rate: RATES[random(RATES.length)], burst: 1 + random(5) },
    { name: 'tpm', rate: '1000/minute', burst: 50 + random(100), dimension: 'tokens' },
    { name: 'rps', rate: RATES[random(RATES.length)], burst: 1 + random(5) },
  ];
  const clock = new ManualClock();
  const blockMs = seed % 2 === 0 ? 1 + random(2000) : 0;
  const local = new Policy(entries, { clock, maxKeys: 1000, blockMs });
  const remote = new RedisLimiter(entries, { client, prefix: uniquePrefix('differential-policy'), outage: 'closed', expiryGraceMs: GRACE_MS, blockMs });
  const pending = [];
  let now = BigInt(random(1_000_000_000));
  const ops = ['check', 'check', 'peek', 'force', 'refund', 'reset', 'reserve', 'settle'];
  for (let index = 0; index < STEPS; index++) {
    now = nextTime(random, now);
    clock.setNs(now);
    const op = ops[random(ops.length)];
    const key = `k${random(2)}`;
    const costs = { requests: random(3), tokens: random(80) };
    const at = { nowNs: now };
    const where = `seed ${seed} (blockMs ${blockMs}) step ${index}: ${op} ${key} ${JSON.stringify(costs)} at ${now}`;
    if (op === 'reset') {
      local.reset(key);
      await remote.reset(key, at);
      same(local.peek(key, [0, 0]), await remote.peek(key, [0, 0], at), where);
    } else if (op === 'reserve') {
      const mine = local.reserve(key, costs);
      const theirs = await remote.reserve(key, costs, at);
      same(mine.decision, theirs.decision, where);
      assert.equal(theirs.reservation !== null, mine.reservation !== null, `${where}: reservation`);
      if (mine.reservation) pending.push([mine.reservation, theirs.reservation]);
    } else if (op === 'settle') {
      if (pending.length === 0) continue;
      const [mine, theirs] = pending.splice(random(pending.length), 1)[0];
      same(local.settle(mine, costs), await remote.settle(theirs, costs, at), where);
    } else {
      same(local[op](key, costs), await remote.apply(op, key, costs, at), where);
    }
  }
}

test('random schedules: RedisLimiter decides as the in-process Limiter and Policy, step for step', { skip: SKIP }, async (t) => {
  const connected = await clients();
  after(() => connected.forEach((each) => each.close()));
  for (const { kind, client } of connected) {
    for (const seed of SEEDS) {
      await t.test(`${kind}: one quota, seed ${seed}`, () => singleSchedule(client, seed));
      await t.test(`${kind}: a policy of three quotas over two dimensions, seed ${seed}`, () => policySchedule(client, seed));
    }
  }
});
