'use strict';
// Four processes on one key through one redis-server admit exactly the quota in total: the
// script decides each call atomically in Redis, whichever process sends it.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { URL, SKIP, uniquePrefix } = require('./redis-support');

const PROCESSES = 4;
const ATTEMPTS = 60; // each: 240 attempts in all for a quota of 100 per hour

function child(prefix, kind) {
  const process_ = spawn(process.execPath, [path.join(__dirname, 'redis-child.js'), URL, prefix, kind, String(ATTEMPTS)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  process_.stdout.on('data', (chunk) => { stdout += chunk; });
  process_.stderr.on('data', (chunk) => { stderr += chunk; });
  const done = new Promise((resolve, reject) => {
    process_.once('error', reject);
    process_.once('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`child exited ${code}: ${stderr}`))));
  });
  return { process: process_, done };
}

test(`${PROCESSES} processes on one key admit exactly the quota (100), ioredis and node-redis mixed`, { skip: SKIP }, async () => {
  const prefix = uniquePrefix('processes');
  const children = Array.from({ length: PROCESSES }, (_, index) => child(prefix, index % 2 === 0 ? 'ioredis' : 'node-redis'));
  // Every child connected and waiting before any checks: they overlap.
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const each of children) each.process.stdin.end('go\n');
  const results = await Promise.all(children.map((each) => each.done));
  const admitted = results.reduce((sum, result) => sum + result.admitted, 0);
  for (const result of results) assert.deepEqual(Object.keys(result.reasons), ['limit'], JSON.stringify(result.reasons));
  assert.equal(admitted, 100, JSON.stringify(results));
  assert.equal(results.reduce((sum, result) => sum + result.reasons.limit, 0), PROCESSES * ATTEMPTS);
});
