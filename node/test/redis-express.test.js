'use strict';
// The Express middleware and the Fastify plugin over a RedisLimiter: concurrent requests
// admit exactly the quota, the denials carry the same headers and body as the in-process
// limiter's, and count: 'failed' refunds successes in Redis, over ioredis and node-redis.

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

// count: 'failed' over Redis: every request is checked in Redis, a success is refunded there
// once its response is sent, so successes never spend the quota and failures do, in both
// frameworks and over both clients. (Requests go one at a time: each refund is sent on the
// client's one connection before the next request's check.)
test("count: 'failed' over RedisLimiter: successes are refunded in Redis, failures spend the quota", { skip: SKIP }, async () => {
  const connected = await clients();
  after(() => connected.forEach((each) => each.close()));
  const login = (ok) => (ok ? [200, 'welcome'] : [401, 'no']);
  for (const { kind, client } of connected) {
    const expressLimiter = new RedisLimiter('2/hour', { client, prefix: uniquePrefix('count-express') });
    const app = express();
    app.use(rateLimit({ limiter: expressLimiter, key: () => 'alice', count: 'failed' }));
    app.get('/login', (req, res) => {
      const [status, body] = login(req.query.ok === '1');
      res.status(status).send(body);
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const expressStatuses = [];
    for (const path of ['/login?ok=1', '/login?ok=1', '/login?ok=1', '/login', '/login', '/login?ok=1']) {
      expressStatuses.push((await request(server.address().port, path)).status);
    }
    await close(server);
    assert.deepEqual(expressStatuses, [200, 200, 200, 401, 401, 429], `Express, ${kind}`);
    assert.equal(expressLimiter.stats().remote, 6 + 3, `Express, ${kind}: six checks and three refunds, all in Redis`);

    const fastifyLimiter = new RedisLimiter('2/hour', { client, prefix: uniquePrefix('count-fastify') });
    const fastify = Fastify();
    await fastify.register(cellgateFastify, { limiter: fastifyLimiter, key: () => 'alice', count: 'failed' });
    fastify.get('/login', async (req, reply) => {
      const [status, body] = login(req.query.ok === '1');
      return reply.code(status).send(body);
    });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    const fastifyStatuses = [];
    for (const path of ['/login?ok=1', '/login?ok=1', '/login?ok=1', '/login', '/login', '/login?ok=1']) {
      fastifyStatuses.push((await request(fastify.server.address().port, path)).status);
    }
    await fastify.close();
    assert.deepEqual(fastifyStatuses, [200, 200, 200, 401, 401, 429], `Fastify, ${kind}`);
    assert.equal(fastifyLimiter.stats().remote, 6 + 3, `Fastify, ${kind}: six checks and three refunds, all in Redis`);
  }
});
