'use strict';
// A child process of shared-memory.test.js. Two modes:
//   node shared-child.js check PATH ATTEMPTS [PAUSE_MS]  waits for "go" on stdin, then checks
//       ATTEMPTS times (PAUSE_MS apart, default 0) on the key "hot-key" of a 50/hour limiter
//       over the shared table at PATH and prints `{ "admitted": N }` (host/cross-runtime's
//       driver runs it beside C and Python workers);
//   node shared-child.js cluster PATH         a cluster primary with 4 workers, each an Express
//       app on one shared loopback port behind cellgate/express over a 20/minute limiter on
//       PATH; prints `{ "port": P }` once every worker listens; answers each request with the
//       worker's pid. It exits when its stdin closes (the test ends), stopping the workers.
// Run as a file by `node --test test/`, with no arguments, it does nothing.

const cluster = require('node:cluster');
const { Limiter, SharedMemory } = require('cellgate');

const [mode, path, attempts, pauseMs] = process.argv.slice(2);

if (mode === 'check') {
  const limiter = new Limiter('50/hour', { store: new SharedMemory(path) });
  process.stdin.once('data', () => {
    let admitted = 0;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < Number(attempts); i += 1) {
      if (limiter.check('hot-key').allowed) admitted += 1;
      if (pauseMs) Atomics.wait(pause, 0, 0, Number(pauseMs)); // a synchronous sleep
    }
    process.stdout.write(JSON.stringify({ admitted }));
    process.exit(0);
  });
} else if (mode === 'cluster' && cluster.isPrimary) {
  cluster.setupPrimary({ args: ['cluster', path] });
  const workers = Array.from({ length: 4 }, () => cluster.fork());
  let listening = 0;
  let port = 0;
  cluster.on('listening', (_worker, address) => {
    listening += 1;
    port = address.port;
    if (listening === workers.length) process.stdout.write(`${JSON.stringify({ port })}\n`);
  });
  const stop = () => {
    for (const worker of workers) worker.process.kill('SIGKILL');
    process.exit(0);
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
} else if (mode === 'cluster') {
  const express = require('express');
  const { rateLimit } = require('cellgate/express');
  const app = express();
  app.use(rateLimit({ limiter: new Limiter('20/minute', { store: new SharedMemory(path) }) }));
  app.get('/', (_req, res) => res.send(String(process.pid)));
  // Port 0 in every worker: the primary hands them one shared port.
  app.listen(0, '127.0.0.1');
}
