'use strict';
// `make demo-node`, second part: a Node `cluster` of 4 Express workers on one free port of
// 127.0.0.1, each with `new Limiter('5/minute', { store: new SharedMemory(file) })`: one
// per-host limit, not one per worker. Twelve requests show 5 × 200 then 429s, each naming the
// worker that answered. Every worker is killed and the table file removed however it ends;
// a watchdog stops everything after 20 s.

const cluster = require('node:cluster');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const express = require('express');
const { Limiter, SharedMemory } = require('cellgate');
const { rateLimit } = require('cellgate/express');

const WORKERS = 4;

if (cluster.isPrimary) {
  const file = path.join(os.tmpdir(), `cellgate-demo-cluster-${process.pid}`);
  process.env.CELLGATE_DEMO_TABLE = file;
  const workers = Array.from({ length: WORKERS }, () => cluster.fork());
  const stop = (code) => {
    for (const worker of workers) worker.process.kill('SIGKILL');
    SharedMemory.remove(file);
    process.exit(code);
  };
  setTimeout(() => { console.error('demo-cluster: timed out'); stop(1); }, 20_000).unref();
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    listening += 1;
    if (listening === WORKERS) run(address.port).then(() => stop(0), (error) => { console.error(error); stop(1); });
  });
} else {
  const app = express();
  app.use(rateLimit({ limiter: new Limiter('5/minute', { store: new SharedMemory(process.env.CELLGATE_DEMO_TABLE) }) }));
  app.get('/', (_req, res) => res.json({ worker: process.pid }));
  app.listen(0, '127.0.0.1'); // the primary hands every worker one shared port
}

function get(port) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body, remaining: res.headers.ratelimit }));
    }).on('error', reject);
  });
}

async function run(port) {
  console.log(`cluster of ${WORKERS} workers on http://127.0.0.1:${port}/, one 5/minute limit for the host`);
  const pids = new Set();
  let admitted = 0;
  for (let i = 1; i <= 12; i += 1) {
    const { status, body } = await get(port);
    const worker = status === 200 ? JSON.parse(body).worker : '-';
    if (status === 200) { admitted += 1; pids.add(worker); }
    console.log(`#${String(i).padEnd(3)} ${status}  worker ${worker}`);
  }
  console.log(`${admitted} admitted by ${pids.size} different workers; the rest refused with 429`);
  if (admitted !== 5) throw new Error(`expected 5 admitted for the host, got ${admitted}`);
}
