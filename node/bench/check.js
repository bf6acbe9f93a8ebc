'use strict';
// `make bench-node`: check(key) with a short string key against rate-limiter-flexible's
// RateLimiterMemory.consume and express-rate-limit's MemoryStore.increment, in the same
// process, plus the Node-API boundary costs the design is built around.
//
//   node bench/check.js [--iterations N] [--rounds R] [--json] [--gc]
//
// Each case runs R rounds of N calls after a warm-up; the figure is the median ns per call.
// Every quota is large enough that nothing is denied, so every library does its full
// admitting work. Peers return promises; the loop does not await each one (that would
// measure the microtask queue), and awaits them all at the end of the round.
//
// With `--gc` the heap is collected in full (untimed) after each case, so that a case pays
// for the garbage it makes (its scavenges, its promotions) but not for an earlier case's: a
// round of rate-limiter-flexible leaves a million promoted promises behind, whose marking is
// otherwise charged to whichever allocating cases come next. The default (no collections)
// is the method of the figures in BENCHMARKS.md.

const args = process.argv.slice(2);
function flag(name, fallback) {
  const index = args.indexOf(name);
  return index >= 0 ? Number(args[index + 1]) : fallback;
}
const ITERATIONS = flag('--iterations', 1_000_000);
const ROUNDS = flag('--rounds', 7);
const JSON_OUT = args.includes('--json');
const COLLECT = args.includes('--gc');
// `gc()` without starting node with --expose-gc (as test/lifetime.test.js does).
require('node:v8').setFlagsFromString('--expose-gc');
const gc = require('node:vm').runInNewContext('gc');

const cellgate = require('cellgate');
// The addon itself, for the boundary figures (not an export of the package).
const packageLib = require('node:path').join(require('node:path').dirname(require.resolve('cellgate/package.json')), 'lib');
const { native, LAYOUT } = require(require('node:path').join(packageLib, 'boundary.js'));
// The middleware's entry point: the check and its headers in one native call (internal).
const { kCheckWithHeaders } = require(require('node:path').join(packageLib, 'decision.js'));
// The boundary probes are in a second addon built with the `bench-probes` feature (make
// bench-node builds it and names it here); the package's addon has none.
const probes = process.env.CELLGATE_BENCH_ADDON ? require(process.env.CELLGATE_BENCH_ADDON) : undefined;

function requireOptional(name) {
  try {
    return require(name);
  } catch {
    return undefined;
  }
}
const flexible = requireOptional('rate-limiter-flexible');
const expressRateLimit = requireOptional('express-rate-limit');

const KEY = 'user:42';

function caseOf(name, fn) {
  return { name, fn };
}
const KEYS = Array.from({ length: 1000 }, (_, index) => `user:${index}`);

/**
 * Runs every case once per round, the cases interleaved, so that a change in the machine's
 * load (it is shared) touches every case alike; each case's figure is its median over the
 * rounds, and each ratio the median of the ratios within a round.
 */
async function measureAll(cases) {
  let sink = 0;
  const warm = Math.min(ITERATIONS, 100_000);
  for (const { fn } of cases) for (let i = 0; i < warm; i++) sink ^= fn(i) ? 1 : 0;
  const rounds = cases.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let index = 0; index < cases.length; index++) {
      const { fn } = cases[index];
      const start = process.hrtime.bigint();
      for (let i = 0; i < ITERATIONS; i++) sink ^= fn(i) ? 1 : 0;
      rounds[index].push(Number(process.hrtime.bigint() - start) / ITERATIONS);
      await new Promise((resolve) => setImmediate(resolve)); // let peers' promises settle
      if (COLLECT) gc(); // this case's garbage, before the next case is timed
    }
  }
  if (sink === 42) console.log('');
  return cases.map(({ name }, index) => ({ name, ns: median(rounds[index]), rounds: rounds[index] }));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The median over rounds of `peer / ours` measured in the same round. */
function ratio(results, peerName, oursName) {
  const peer = results.find((result) => result.name === peerName);
  const ours = results.find((result) => result.name === oursName);
  if (!peer || !ours) return undefined;
  return median(peer.rounds.map((ns, round) => ns / ours.rounds[round]));
}

async function main() {
  const cases = [];
  let expressStore;
  const limiter = new cellgate.Limiter('1000000000/second', { maxKeys: 10_000 });
  const options = { cost: 1 };
  const buffer = Buffer.from(KEY);
  cases.push(caseOf('cellgate check(key)', () => limiter.check(KEY).allowed));
  cases.push(caseOf('cellgate check(key, { cost: 1 })', () => limiter.check(KEY, options).allowed));
  cases.push(caseOf('cellgate check(Buffer key)', () => limiter.check(buffer).allowed));
  cases.push(caseOf('cellgate check(1000 keys)', (i) => limiter.check(KEYS[i % 1000]).allowed));
  const multi = new cellgate.Limiter('1000000000/second; 1000000000000/day', { maxKeys: 10_000 });
  cases.push(caseOf("cellgate check(key), '…/s; …/day'", () => multi.check(KEY).allowed));
  const decision = limiter.check(KEY);
  cases.push(caseOf('cellgate headers(decision)', () => cellgate.headers(decision).RateLimit));
  // What the Fastify and Express middleware pay per request for the decision and its
  // headers (the 'ietf' style, lowercase names as Fastify sends them): the two public calls,
  // against the one native call the middleware makes.
  const IETF = native.headerStyles().indexOf('ietf');
  cases.push(caseOf('middleware: check(key) then headers(decision)', () => cellgate.headers(limiter.check(KEY)).RateLimit));
  cases.push(caseOf('middleware: check and headers in one native call', () => limiter[kCheckWithHeaders](KEY, IETF, 0, true).headers.ratelimit));

  if (flexible) {
    const rlf = new flexible.RateLimiterMemory({ points: 1e15, duration: 1 });
    cases.push(caseOf('rate-limiter-flexible consume(key)', () => rlf.consume(KEY)));
  }
  if (expressRateLimit) {
    expressStore = new expressRateLimit.MemoryStore();
    expressStore.init({ windowMs: 60_000 });
    const store = expressStore;
    cases.push(caseOf('express-rate-limit MemoryStore.increment(key)', () => store.increment(KEY)));
  }

  // The boundary, as the design sees it.
  const shared = new Float64Array(64);
  shared[LAYOUT.COSTS] = 1;
  const rawQuota = [{ rate: '1000000000/second', dimension: 0, argument: 'rate', nameArgument: 'rate' }];
  const rawOptions = { refill: 'greedy', maxKeys: 10_000, onFull: 'deny', argument: 'rate' };
  const raw = new native.NativeLimiter(rawQuota, rawOptions, undefined, shared);
  const rawCheck = raw.fastFunction();
  cases.push(caseOf('boundary: native check(key), no decision object', () => rawCheck(KEY)));
  // The floor under headers(decision): the header function alone (core's rendering, the
  // Node-API call, the values string), without the JavaScript object.
  // A decision in entry 0, as headers() writes it back: allowed, limit, remaining, waits.
  shared.set([1, 1e9, 1e9 - 1, 0, 1], LAYOUT.ENTRIES);
  const rawRender = raw.headerFunction();
  cases.push(caseOf('boundary: the header function alone (core renders, one string back)', () => rawRender(0, 0, 1)));
  const rawManualShared = new Float64Array(64);
  rawManualShared[LAYOUT.COSTS] = 1;
  const rawManual = new native.NativeLimiter(rawQuota, rawOptions, new native.NativeManualClock(0n), rawManualShared);
  const rawManualCheck = rawManual.fastFunction();
  cases.push(caseOf('boundary: native check(key), no decision object, ManualClock', () => rawManualCheck(KEY)));
  const clock = new cellgate.ManualClock();
  const manual = new cellgate.Limiter('1000000000/second', { maxKeys: 10_000, clock });
  cases.push(caseOf('cellgate check(key), ManualClock (no clock read)', () => manual.check(KEY).allowed));
  if (probes) {
    const [rawKeyOnly, rawEmpty, rawArgs, rawLatin1, rawUtf8] = probes.benchRawProbes();
    cases.push(caseOf('boundary: plain Node-API function, empty', () => rawEmpty()));
    cases.push(caseOf('boundary: plain Node-API function reading its arguments', () => rawArgs(KEY)));
    cases.push(caseOf('boundary: plain, key read as Latin-1 (probe only)', () => rawLatin1(KEY)));
    cases.push(caseOf('boundary: plain, key read as UTF-8', () => rawUtf8(KEY)));
    cases.push(caseOf('boundary: plain, key read by cellgate (UTF-8 into a stack buffer)', () => rawKeyOnly(KEY)));
    cases.push(caseOf('boundary: napi-rs function, empty', () => probes.benchEmpty()));
    cases.push(caseOf('boundary: napi-rs function, number in, bool out', () => probes.benchNumberToBool(0.7)));
    cases.push(caseOf('boundary: napi-rs function, key as String', () => probes.benchString(KEY)));
    cases.push(caseOf('boundary: napi-rs function, key as UTF-16', () => probes.benchUtf16(KEY)));
    cases.push(caseOf('boundary: napi-rs function, key as cellgate Key', () => probes.benchKey(KEY)));
    cases.push(caseOf('boundary: #[napi(object)] with 5 fields', () => probes.benchObject().allowed));
  }
  cases.push(caseOf('boundary: JS object literal with 5 fields', (i) => ({ allowed: true, limit: 10, remaining: i, retryAfterMs: 0, resetAfterMs: 100 }).allowed));

  const results = await measureAll(cases);
  if (expressStore) expressStore.shutdown();
  const ours = results.find((result) => result.name === 'cellgate check(key)').ns;
  const rlf = ratio(results, 'rate-limiter-flexible consume(key)', 'cellgate check(key)');
  const erl = ratio(results, 'express-rate-limit MemoryStore.increment(key)', 'cellgate check(key)');
  if (JSON_OUT) {
    console.log(JSON.stringify({ iterations: ITERATIONS, rounds: ROUNDS, results, ratios: { rlf, erl } }, null, 2));
  } else {
    console.log(`node ${process.version}, ${ITERATIONS} calls x ${ROUNDS} rounds (cases interleaved${COLLECT ? ', a full collection after each case' : ', no collections between cases'}), median ns per call\n`);
    if (!probes) console.log('(no CELLGATE_BENCH_ADDON: the boundary probes are left out; make bench-node builds them)\n');
    for (const { name, ns } of results) console.log(`${ns.toFixed(1).padStart(9)}  ${name}`);
    console.log('');
    console.log(`target: check(key) <= 120 ns: ${ours.toFixed(1)} ns -> ${ours <= 120 ? 'met' : 'MISSED'}`);
    if (rlf) console.log(`target: >= 2x faster than rate-limiter-flexible: ${rlf.toFixed(2)}x (median of per-round ratios) -> ${rlf >= 2 ? 'met' : 'MISSED'}`);
    if (erl) console.log(`target: no slower than express-rate-limit MemoryStore: ${erl.toFixed(2)}x (median of per-round ratios) -> ${erl >= 1 ? 'met' : 'MISSED'}`);
    const headerNs = results.find((result) => result.name === 'cellgate headers(decision)').ns;
    const floorNs = results.find((result) => result.name.startsWith('boundary: the header function alone')).ns;
    console.log(`target: headers(decision) <= 100 ns: ${headerNs.toFixed(1)} ns -> ${headerNs <= 100 ? 'met' : 'MISSED'} (the header function alone: ${floorNs.toFixed(1)} ns)`);
  }
  return results;
}

module.exports = { main };
if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
