'use strict';
// `make demo-redis` (under redis-store/with-redis.sh, which starts a redis-server on a free
// loopback port and names it in CELLGATE_REDIS_URL): two instances in two runtimes, Express A
// (cellgate/redis over ioredis) and FastAPI B (cellgate.redis.AsyncRedisLimiter under uvicorn,
// py/demo/redis_app.py, run by the interpreter in CELLGATE_DEMO_PYTHON), on two ports of
// 127.0.0.1, share one limit of 5 requests per 10 seconds per client through Redis. Requests
// alternate between them; the 429s arrive at whichever one is asked once the shared quota is
// spent, with the same headers from both. Everything is stopped and the script exits by itself
// (a watchdog ends it after 30 s in any case). Without CELLGATE_DEMO_PYTHON, B is a second
// Express.

const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');

const URL = process.env.CELLGATE_REDIS_URL;
if (!URL) {
  console.error('CELLGATE_REDIS_URL is unset: run `make demo-redis` (redis-store/with-redis.sh starts a redis-server)');
  process.exit(2);
}

/** One instance: Express with the shared RedisLimiter, on a free port it prints. */
function instance(name) {
  const express = require('express');
  const Redis = require('ioredis');
  const { RedisLimiter } = require('cellgate/redis');
  const { rateLimit } = require('cellgate/express');
  const client = new Redis(URL);
  const limiter = new RedisLimiter('5 per 10 seconds', { client, prefix: 'demo:' });
  const app = express();
  app.use(rateLimit({ limiter }));
  app.get('/hello', (req, res) => res.json({ instance: name, remaining: req.rateLimit.remaining }));
  const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections?.();
    client.disconnect();
  });
}

function get(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ res, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** Express instance `name` in a child process of this script; its port is the first line it prints. */
function startExpress(name) {
  const child = spawn(process.execPath, [__filename, '--instance', name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once('line', (line) => resolve(Number(line)));
    child.once('exit', (code) => reject(new Error(`instance ${name} exited (${code})`)));
  });
  return { name, label: `Express ${name}`, child, port };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function untilListening(port, child, name) {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`instance ${name} exited (${child.exitCode})`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (open) return port;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`instance ${name} did not listen on 127.0.0.1:${port} in 20 s`);
}

/** FastAPI instance `name` under uvicorn (py/demo/redis_app.py), by the interpreter `python`. */
let stopping = false;

function startFastapi(name, python) {
  const app = path.join(__dirname, '..', '..', 'py', 'demo');
  const port = freePort();
  const child = { exitCode: null, kill: () => {} };
  const started = port.then((chosen) => {
    if (stopping) throw new Error(`instance ${name} not started: the demo is stopping`);
    const uvicorn = spawn(python, ['-m', 'uvicorn', 'redis_app:app', '--app-dir', app, '--host', '127.0.0.1',
      '--port', String(chosen), '--log-level', 'warning'], { stdio: ['ignore', 'inherit', 'inherit'] });
    Object.assign(child, { kill: (signal) => uvicorn.kill(signal), process: uvicorn });
    uvicorn.once('exit', (code, signal) => { child.exitCode = code ?? signal; });
    return untilListening(chosen, child, name);
  });
  return { name, label: `FastAPI ${name}`, child, port: started };
}
async function main() {
  const python = process.env.CELLGATE_DEMO_PYTHON;
  const instances = [startExpress('A'), python ? startFastapi('B', python) : startExpress('B')];
  const stop = () => {
    stopping = true;
    instances.forEach(({ child }) => child.exitCode === null && child.kill('SIGTERM'));
  };
  const watchdog = setTimeout(() => {
    console.error('demo: watchdog fired after 30 s');
    stop();
    process.exit(1);
  }, 30000);
  try {
    const ports = await Promise.all(instances.map((each) => each.port));
    const where = instances.map(({ label }, at) => `${label} on 127.0.0.1:${ports[at]}`).join(', ');
    console.log(`${where}: one limit, '5 per 10 seconds' per client, kept in Redis (${URL})\n`);
    const statuses = [];
    for (let index = 0; index < 10; index++) {
      const at = index % 2;
      const { res, body } = await get(ports[at], '/hello');
      statuses.push(res.statusCode);
      const shown = ['ratelimit', 'retry-after'].filter((name) => res.headers[name] !== undefined).map((name) => `${name}: ${res.headers[name]}`).join('  ');
      console.log(`#${index + 1}  asked ${instances[at].label}  ${res.statusCode}  ${shown}`);
      console.log(`     ${body}`);
    }
    const admitted = statuses.filter((status) => status === 200).length;
    if (admitted !== 5 || statuses.slice(0, 5).some((status) => status !== 200)) {
      console.error(`demo: the two instances admitted ${admitted} of 10, not the shared 5 first`);
      process.exitCode = 1;
    }
  } finally {
    clearTimeout(watchdog);
    stop();
  }
}

if (process.argv[2] === '--instance') {
  instance(process.argv[3]);
} else {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
