'use strict';
// The shared-memory store (issue 13): one table for every process of the host. Each test
// uses its own file under the OS temporary directory and removes it after.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { Limiter, Policy, ManualClock, SharedMemory, SharedMemoryError } = require('cellgate');

const CHILD = path.join(__dirname, 'shared-child.js');

function tablePath(t) {
  const file = path.join(os.tmpdir(), `cellgate-node-${process.pid}-${Math.random().toString(36).slice(2)}`);
  t.after(() => SharedMemory.remove(file));
  return file;
}

function spawnChild(args) {
  return spawn(process.execPath, [CHILD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
}

function output(child) {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk) => { text += chunk; });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(text)) : reject(new Error(`child exited ${code}`))));
  });
}

test('two limiters over one file share one bucket; another file is another bucket', (t) => {
  const file = tablePath(t);
  const a = new Limiter('3/hour', { store: new SharedMemory(file) });
  const b = new Limiter('3/hour', { store: new SharedMemory(file) });
  assert.equal(a.check('k', { cost: 2 }).remaining, 1);
  assert.equal(b.check('k').remaining, 0);
  assert.equal(a.check('k').allowed, false);
  assert.equal(b.check('k').reason, 'limit');
  const other = new Limiter('3/hour', { store: new SharedMemory(tablePath(t)) });
  assert.equal(other.check('k').remaining, 2);
});

test('four processes on one key admit exactly the quota, not four times it', async (t) => {
  const file = tablePath(t);
  new Limiter('50/hour', { store: new SharedMemory(file) }); // created before the children race
  const children = Array.from({ length: 4 }, () => spawnChild(['check', file, '100']));
  const results = children.map(output);
  // Every child attaches first; then all start at once.
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const child of children) child.stdin.write('go\n');
  const admitted = (await Promise.all(results)).reduce((sum, each) => sum + each.admitted, 0);
  // 50/hour refills one unit every 72 s: a run of seconds admits exactly the burst.
  assert.equal(admitted, 50);
});

test('a cluster of 4 Express workers holds one per-host limit', async (t) => {
  const file = tablePath(t);
  const primary = spawnChild(['cluster', file]);
  t.after(() => { primary.stdin.end(); primary.kill('SIGTERM'); });
  const port = await new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('the cluster did not start')), 20_000);
    primary.stdout.on('data', (chunk) => {
      text += chunk;
      if (text.includes('\n')) { clearTimeout(timer); resolve(JSON.parse(text).port); }
    });
    primary.on('exit', (code) => reject(new Error(`the cluster exited ${code}`)));
  });
  const agent = new http.Agent({ keepAlive: false });
  const get = () => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
  const started = Date.now();
  const answers = [];
  for (let round = 0; round < 25; round += 1) answers.push(...await Promise.all(Array.from({ length: 8 }, get)));
  const elapsedS = (Date.now() - started) / 1000;
  const admitted = answers.filter((each) => each.status === 200);
  const pids = new Set(admitted.map((each) => each.body));
  assert.ok(answers.every((each) => each.status === 200 || each.status === 429));
  // 20/minute refills one every 3 s: exactly 20 when the run takes under 3 s.
  assert.ok(admitted.length >= 20 && admitted.length <= 20 + Math.floor(elapsedS / 3), `${admitted.length} admitted in ${elapsedS} s`);
  if (elapsedS < 3) assert.equal(admitted.length, 20);
  assert.ok(pids.size >= 2, `only ${pids.size} worker answered`);
});

test('another configuration on the same file is a typed error naming the field', (t) => {
  const file = tablePath(t);
  new Limiter('50/hour', { store: new SharedMemory(file) });
  assert.throws(() => new Limiter('60/hour', { store: new SharedMemory(file) }), (error) => {
    assert.ok(error instanceof SharedMemoryError);
    assert.equal(error.code, 'ERR_CELLGATE_SHARED_CONFIG_MISMATCH');
    assert.match(error.message, /rate_cost/);
    assert.ok(error.message.startsWith(file));
    return true;
  });
  assert.throws(() => new Limiter('50/hour', { store: new SharedMemory(file), maxKeys: 10 }), { code: 'ERR_CELLGATE_SHARED_CONFIG_MISMATCH' });
});

test('a garbage or truncated file is an error, never a crash', (t) => {
  const file = tablePath(t);
  fs.writeFileSync(file, Buffer.alloc(4096, 0x5a), { mode: 0o600 });
  assert.throws(() => new Limiter('50/hour', { store: new SharedMemory(file) }), { name: 'SharedMemoryError', code: 'ERR_CELLGATE_SHARED_BAD_FILE' });
  fs.writeFileSync(file, Buffer.alloc(10), { mode: 0o600 });
  assert.throws(() => new Limiter('50/hour', { store: new SharedMemory(file) }), { code: 'ERR_CELLGATE_SHARED_BAD_FILE' });
  assert.throws(() => new Limiter('50/hour', { store: new SharedMemory(os.tmpdir()) }), { code: 'ERR_CELLGATE_SHARED_BAD_FILE' });
});

test('bad store arguments are typed errors that create nothing', (t) => {
  const file = tablePath(t);
  assert.throws(() => new SharedMemory(''), TypeError);
  assert.throws(() => new SharedMemory(file, { access: 'world' }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new SharedMemory(file, { allowOtherOwner: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new SharedMemory(file, { mode: 0o666 }), /options\.mode/);
  assert.throws(() => new Limiter('5/second', { store: file }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Limiter('5/second', { store: new SharedMemory(file), clock: new ManualClock(0n) }), /clock/);
  assert.equal(fs.existsSync(file), false);
});

test('a policy over a shared table reserves and settles like an in-process one', (t) => {
  const file = tablePath(t);
  const entries = [{ name: 'requests', rate: '10/minute' }, { name: 'tokens', rate: '1000/minute', dimension: 'tokens' }];
  const shared = new Policy(entries, { store: new SharedMemory(file) });
  const other = new Policy(entries, { store: new SharedMemory(file) });
  const reservation = shared.reserve('org', { requests: 1, tokens: 600 });
  assert.equal(reservation.decision.allowed, true);
  assert.equal(other.check('org', { requests: 1, tokens: 500 }).allowed, false);
  shared.settle(reservation.reservation, { tokens: 100 });
  assert.equal(other.check('org', { requests: 1, tokens: 500 }).allowed, true);
});

test('SharedMemory.remove says whether there was a file', (t) => {
  const file = tablePath(t);
  new Limiter('1/second', { store: new SharedMemory(file) });
  assert.equal(SharedMemory.remove(file), true);
  assert.equal(SharedMemory.remove(file), false);
});
