'use strict';
// Helpers of the Redis tests (redis*.test.js): the server named by CELLGATE_REDIS_URL
// (redis-store/with-redis.sh starts one: `make test-node-redis`), clients of both kinds, and
// servers of the tests' own on free loopback ports (the outage tests kill and restart them).

const net = require('node:net');
const os = require('node:os');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const URL = process.env.CELLGATE_REDIS_URL;
/** `skip` for every Redis test when no server was started for them (a skip that says why). */
const SKIP = URL ? false : 'CELLGATE_REDIS_URL is unset: `make test-node-redis` runs these against a real redis-server (redis-store/with-redis.sh)';

/** Both client kinds, connected to `url`: `[{ kind, client, close }]`. */
async function clients(url = URL, ioredisOptions = {}, nodeRedisOptions = {}) {
  const Redis = require('ioredis');
  const { createClient } = require('redis');
  const io = new Redis(url, { lazyConnect: true, ...ioredisOptions });
  await io.connect();
  const nr = createClient({ url, ...nodeRedisOptions });
  nr.on('error', () => {}); // reconnects are expected in the outage tests
  await nr.connect();
  return [
    { kind: 'ioredis', client: io, close: () => io.disconnect() },
    { kind: 'node-redis', client: nr, close: () => nr.disconnect().catch(() => {}) },
  ];
}

/** A port nothing listens on. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(200);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}

/** A redis-server of the test's own on `port` (no persistence); resolves once it answers. */
async function startServer(port) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellgate-node-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await ping(port)) {
      return {
        port,
        url: `redis://127.0.0.1:${port}/`,
        /** SIGKILL: the server is gone, as in a crash. */
        kill: () => new Promise((resolve) => {
          child.once('exit', () => { fs.rmSync(dir, { recursive: true, force: true }); resolve(); });
          child.kill('SIGKILL');
        }),
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not start on port ${port}`);
}

/** A seeded generator (xorshift64*): `next(n)` is an integer in [0, n). */
function seeded(seed) {
  let state = BigInt(seed) | 1n;
  const mask = (1n << 64n) - 1n;
  return (n) => {
    state ^= state >> 12n;
    state ^= (state << 25n) & mask;
    state ^= state >> 27n;
    const value = (state * 2685821657736338717n) & mask;
    return Number((value >> 11n) % BigInt(n));
  };
}

/** A prefix no other test uses. */
function uniquePrefix(name) {
  return `cellgate-node-test:${name}:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2)}:`;
}

module.exports = { URL, SKIP, clients, freePort, startServer, seeded, uniquePrefix };
