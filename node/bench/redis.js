'use strict';
// `make bench-node-redis`: decisions per second and latency per decision against one local
// redis-server (CELLGATE_REDIS_URL, started by redis-store/with-redis.sh), in one run:
// cellgate's RedisLimiter (over ioredis, and over node-redis) against rate-limiter-flexible's
// RateLimiterRedis (over ioredis), with 1 call in flight and with 8.
//
//   node bench/redis.js [--decisions N] [--rounds R] [--json]
//
// Each case makes N decisions per round (keys spread over 1000, a quota nothing reaches, so
// every call does its full admitting work and one round trip); the cases are interleaved
// round by round. Figures: the median over rounds of decisions/s, of the median and p99
// latency of one decision (from the call to its resolution), and of Redis's own time per
// decision (INFO commandstats: the scripts and the commands they call), which bounds what
// one server can decide per second whatever the clients do.

const args = process.argv.slice(2);
function flag(name, fallback) {
  const index = args.indexOf(name);
  return index >= 0 ? Number(args[index + 1]) : fallback;
}
const DECISIONS = flag('--decisions', 20_000);
const ROUNDS = flag('--rounds', 5);
const JSON_OUT = args.includes('--json');
const URL = process.env.CELLGATE_REDIS_URL;
if (!URL) {
  console.error('CELLGATE_REDIS_URL is unset: run `make bench-node-redis` (redis-store/with-redis.sh starts a redis-server)');
  process.exit(2);
}

const Redis = require('ioredis');
const { createClient } = require('redis');
const { RateLimiterRedis } = require('rate-limiter-flexible');
const { RedisLimiter } = require('cellgate/redis');

const KEYS = Array.from({ length: 1000 }, (_, index) => `user:${index}`);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];

/** Redis's own time (INFO commandstats) per decision since the last CONFIG RESETSTAT, in us. */
async function serverUs(admin) {
  const info = await admin.info('commandstats');
  let usec = 0;
  for (const match of info.matchAll(/^cmdstat_([^:]+):.*usec=(\d+),/gm)) {
    if (!/^(config|info)/.test(match[1])) usec += Number(match[2]);
  }
  return usec / DECISIONS;
}

/** N decisions with `inFlight` calls outstanding: { perSecond, p50Us, p99Us, serverUs }. */
async function measure(decide, inFlight, admin) {
  await admin.config('RESETSTAT');
  const latencies = new Float64Array(DECISIONS);
  let next = 0;
  const worker = async () => {
    while (next < DECISIONS) {
      const index = next++;
      const started = process.hrtime.bigint();
      await decide(KEYS[index % KEYS.length]);
      latencies[index] = Number(process.hrtime.bigint() - started) / 1e3;
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  return { perSecond: DECISIONS / seconds, p50Us: quantile(sorted, 0.5), p99Us: quantile(sorted, 0.99), serverUs: await serverUs(admin) };
}

async function main() {
  const io = new Redis(URL);
  // CONFIG RESETSTAT and INFO on a connection of their own.
  const admin = new Redis(URL);
  const nodeRedis = createClient({ url: URL });
  await nodeRedis.connect();
  const stamp = `${process.pid}:${Date.now()}`;
  const quota = '1000000000/minute';
  const overIoredis = new RedisLimiter(quota, { client: io, prefix: `bench:cg-io:${stamp}:`, timeoutMs: 1000 });
  const overNodeRedis = new RedisLimiter(quota, { client: nodeRedis, prefix: `bench:cg-nr:${stamp}:`, timeoutMs: 1000 });
  const flexible = new RateLimiterRedis({ storeClient: io, points: 1e9, duration: 60, keyPrefix: `bench:rlf:${stamp}` });
  const cases = [
    { name: 'cellgate RedisLimiter.check (ioredis)', decide: (key) => overIoredis.check(key) },
    { name: 'cellgate RedisLimiter.check (node-redis)', decide: (key) => overNodeRedis.check(key) },
    { name: 'rate-limiter-flexible RateLimiterRedis.consume (ioredis)', decide: (key) => flexible.consume(key) },
  ];
  // Warm-up: scripts loaded, connections open, JIT warm.
  for (const each of cases) for (let index = 0; index < 2000; index++) await each.decide(KEYS[index % KEYS.length]);
  const results = [];
  for (const inFlight of [1, 8]) {
    const rounds = cases.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [index, each] of cases.entries()) rounds[index].push(await measure(each.decide, inFlight, admin));
    }
    cases.forEach((each, index) => {
      results.push({
        case: each.name,
        inFlight,
        perSecond: median(rounds[index].map((r) => r.perSecond)),
        p50Us: median(rounds[index].map((r) => r.p50Us)),
        p99Us: median(rounds[index].map((r) => r.p99Us)),
        serverUs: median(rounds[index].map((r) => r.serverUs)),
      });
    });
  }
  for (const limiter of [overIoredis, overNodeRedis]) {
    const stats = limiter.stats();
    if (stats.errors !== 0 || stats.fallback !== 0) throw new Error(`the bench was not decided by Redis: ${JSON.stringify(stats)}`);
  }
  io.disconnect();
  admin.disconnect();
  await nodeRedis.quit();
  if (JSON_OUT) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  console.log(`${DECISIONS} decisions per case and round, median of ${ROUNDS} rounds; one local redis-server\n`);
  console.log(`${'case'.padEnd(58)} ${'in flight'.padStart(9)} ${'decisions/s'.padStart(12)} ${'p50 us'.padStart(8)} ${'p99 us'.padStart(8)} ${'redis us'.padStart(9)}  vs flexible`);
  for (const row of results) {
    const peer = results.find((other) => other.inFlight === row.inFlight && other.case.startsWith('rate-limiter-flexible'));
    console.log(`${row.case.padEnd(58)} ${String(row.inFlight).padStart(9)} ${row.perSecond.toFixed(0).padStart(12)} ${row.p50Us.toFixed(1).padStart(8)} ${row.p99Us.toFixed(1).padStart(8)} ${row.serverUs.toFixed(1).padStart(9)}  ${(row.perSecond / peer.perSecond).toFixed(2)}x`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
