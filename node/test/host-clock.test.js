'use strict';
// One clock (issue 12): limiters without a ManualClock read the host's CLOCK_MONOTONIC
// (cellgate-host's host_now_ns), one time line in every process, as a shared table needs.
// A per-process origin (the clock this replaced) would read near 0 in a fresh child.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const boundary = path.join(path.dirname(require.resolve('cellgate/package.json')), 'lib', 'boundary.js');
const { native } = require(boundary);

test('the monotonic clock is the same time line in another process', () => {
  native.monotonicNowNs(); // a first reading here, as a limiter's first check would make
  const before = native.monotonicNowNs();
  const script = `process.stdout.write(String(require(${JSON.stringify(boundary)}).native.monotonicNowNs()))`;
  const child = BigInt(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
  const after = native.monotonicNowNs();
  assert.ok(before <= child && child <= after, `the child's reading ${child} lies between ${before} and ${after}`);
});
