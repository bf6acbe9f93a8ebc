'use strict';
// `make demo-node-redis` (under redis-store/with-redis.sh, which starts a redis-server on a free
// loopback port and names it in CELLGATE_REDIS_URL): two Express instances, two processes on
// two ports of 127.0.0.1, share one limit of 5 requests per 10 seconds per client through
// Redis (cellgate/redis over ioredis). Requests alternate between the instances; the 429s
// arrive at whichever one is asked once the shared quota is spent. Everything is stopped and
// the script exits by itself (a watchdog ends it after 15 s in any case).

const { spawn } = require('node:child_process');
const http = require('node:http');
const readline = require('node:readline');

const URL = process.env.CELLGATE_REDIS_URL;
if (!URL) {
  console.error('CELLGATE_REDIS_URL is unset: run `make demo-node-redis` (redis-store/with-redis.sh starts a redis-server)');
  process.exit(2);
}

/** One instance: Express with the shared RedisLimiter, on a free port it prints. */
function instance(name) {
  const express = require('express');
  const Redis = require('ioredis');
  const { RedisLimiter } = require('cellgate/redis');
  const { rateLimit } = require('cellgate/express');
  const client = new Redis(URL);
  const limiter = new RedisLimiter('5 per 10 seconds', { client, name: 'demo', prefix: 'demo:' });
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

function start(name) {
  const child = spawn(process.execPath, [__filename, '--instance', name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once('line', (line) => resolve(Number(line)));
    child.once('exit', (code) => reject(new Error(`instance ${name} exited (${code})`)));
  });
  return { name, child, port };
}

async function main() {
  const instances = [start('A'), start('B')];
  const stop = () => instances.forEach(({ child }) => child.exitCode === null && child.kill('SIGTERM'));
  const watchdog = setTimeout(() => {
    console.error('demo: watchdog fired after 15 s');
    stop();
    process.exit(1);
  }, 15000);
  try {
    const ports = await Promise.all(instances.map((each) => each.port));
    console.log(`Express A on 127.0.0.1:${ports[0]}, Express B on 127.0.0.1:${ports[1]}: one limit, '5 per 10 seconds' per client, kept in Redis (${URL})\n`);
    for (let index = 0; index < 10; index++) {
      const at = index % 2;
      const { res, body } = await get(ports[at], '/hello');
      const shown = ['ratelimit', 'retry-after'].filter((name) => res.headers[name] !== undefined).map((name) => `${name}: ${res.headers[name]}`).join('  ');
      console.log(`#${index + 1}  asked ${instances[at].name}  ${res.statusCode}  ${shown}`);
      console.log(`     ${body}`);
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
