'use strict';
// The Express middleware and the Fastify plugin over a RedisLimiter: concurrent requests
// admit exactly the quota, the denials carry the same headers and body as the in-process
// limiter's, over ioredis and node-redis.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const Fastify = require('fastify');
const { RedisLimiter } = require('cellgate/redis');
const { rateLimit } = require('cellgate/express');
const cellgateFastify = require('cellgate/fastify');
const { SKIP, clients, uniquePrefix } = require('./redis-support');
const { request, close } = require('./http');

const QUOTA = 5;
const REQUESTS = 16;

function tally(responses) {
  const statuses = responses.map((response) => response.status);
  return { ok: statuses.filter((status) => status === 200).length, limited: statuses.filter((status) => status === 429).length };
}

test('Express over RedisLimiter: concurrent requests admit exactly the quota', { skip: SKIP }, async () => {
  const connected = await clients();
  after(() => connected.forEach((each) => each.close()));
  for (const { kind, client } of connected) {
    const limiter = new RedisLimiter(`${QUOTA}/minute`, { client, prefix: uniquePrefix('express') });
    const app = express();
    app.use(rateLimit({ limiter, key: () => 'one-client' }));
    app.get('/', (req, res) => res.json({ remaining: req.rateLimit.remaining }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address();
    const responses = await Promise.all(Array.from({ length: REQUESTS }, () => request(port, '/')));
    await close(server);
    assert.deepEqual(tally(responses), { ok: QUOTA, limited: REQUESTS - QUOTA }, kind);
    const remaining = responses.filter((response) => response.status === 200).map((response) => JSON.parse(response.body).remaining).sort();
    assert.deepEqual(remaining, [0, 1, 2, 3, 4], kind);
    const denied = responses.find((response) => response.status === 429);
    assert.equal(denied.headers['ratelimit-policy'], '"5-in-1min";q=5;w=60', kind);
    assert.match(denied.headers.ratelimit, /^"5-in-1min";r=0;t=\d+$/);
    assert.match(denied.headers['retry-after'], /^\d+$/);
    assert.deepEqual(Object.keys(JSON.parse(denied.body)), ['error', 'retry_after']);
    assert.equal(limiter.stats().remote, REQUESTS);
  }
});

test('Fastify over RedisLimiter: concurrent requests admit exactly the quota', { skip: SKIP }, async () => {
  const connected = await clients();
  after(() => connected.forEach((each) => each.close()));
  for (const { kind, client } of connected) {
    const limiter = new RedisLimiter(`${QUOTA}/minute`, { client, prefix: uniquePrefix('fastify') });
    const app = Fastify();
    await app.register(cellgateFastify, { limiter, key: () => 'one-client' });
    app.get('/', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address();
    const responses = await Promise.all(Array.from({ length: REQUESTS }, () => request(port, '/')));
    await app.close();
    assert.deepEqual(tally(responses), { ok: QUOTA, limited: REQUESTS - QUOTA }, kind);
  }
});
