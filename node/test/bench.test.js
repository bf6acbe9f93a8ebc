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
  for (const name of ['cellgate check(key)', 'rate-limiter-flexible consume(key)', 'express-rate-limit MemoryStore.increment(key)', 'boundary: plain Node-API function, empty']) {
    assert.ok(names.includes(name), name);
  }
  for (const result of results) assert.ok(Number.isFinite(result.ns) && result.ns > 0, result.name);
});
