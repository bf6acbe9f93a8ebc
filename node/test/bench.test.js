'use strict';
// The bench script runs (on a tiny count, unmeasured) so that it cannot rot.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

test('bench/check.js runs every case', async () => {
  process.argv.push('--iterations', '200', '--rounds', '1', '--json');
  const { main } = require(path.join(__dirname, '..', 'bench', 'check.js'));
  const log = console.log;
  console.log = () => {};
  let results;
  try {
    results = await main();
  } finally {
    console.log = log;
  }
  const names = results.map((result) => result.name);
  for (const name of ['cellgate check(key)', 'rate-limiter-flexible consume(key)', 'express-rate-limit MemoryStore.increment(key)', 'boundary: native check(key), no decision object']) {
    assert.ok(names.includes(name), name);
  }
  // The probes come from a separate addon (make bench-node); with one named, they run too.
  if (process.env.CELLGATE_BENCH_ADDON) assert.ok(names.includes('boundary: plain Node-API function, empty'));
  for (const result of results) assert.ok(Number.isFinite(result.ns) && result.ns > 0, result.name);
});

test('the shipped addon carries no bench probes (they build only with the bench-probes feature)', () => {
  const { native } = require(path.join(path.dirname(require.resolve('cellgate/package.json')), 'lib', 'native.js'));
  const probes = Object.keys(native).filter((name) => /^bench/i.test(name));
  assert.deepEqual(probes, []);
  assert.ok(typeof native.NativeLimiter === 'function', 'the addon itself is there');
});
