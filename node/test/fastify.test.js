'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const Fastify = require('fastify');
const { Limiter, ManualClock } = require('cellgate');
const cellgate = require('cellgate/fastify');
const { request, serveFastify } = require('./http');

test('Fastify: 200s turn into 429s with headers and the JSON body', async () => {
  const clock = new ManualClock();
  const app = Fastify();
  await app.register(cellgate, { limiter: new Limiter('2/second', { clock }) });
  app.get('/', async (request) => ({ remaining: request.rateLimit.remaining }));
  await serveFastify(app, async (port) => {
    const first = await request(port, '/');
    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(first.body), { remaining: 1 });
    assert.equal(first.headers['ratelimit-policy'], '"2-in-1s";q=2;w=1');
    assert.equal(first.headers.ratelimit, '"2-in-1s";r=1;t=1', 'a unit returns within 1 s');
    assert.equal((await request(port, '/')).status, 200);
    const limited = await request(port, '/');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '1');
    assert.match(limited.headers['content-type'], /^application\/json/);
    assert.equal(limited.body, '{"error":"rate_limited","retry_after":1}');
    clock.advance(500);
    assert.equal((await request(port, '/')).status, 200);
  });
});

test('Fastify: key, cost, skip, legacy-epoch headers, and routes registered before the plugin', async () => {
  const clock = new ManualClock();
  const app = Fastify();
  await app.register(cellgate, {
    limiter: new Limiter('5/minute', { clock }),
    key: (request) => request.headers['x-user'] || 'anonymous',
    cost: async (request) => (request.url.startsWith('/expensive') ? 5 : 1),
    skip: (request) => request.url === '/health',
    headers: 'legacy-epoch',
  });
  app.get('/health', async () => 'ok');
  app.get('/expensive', async () => 'done');
  await serveFastify(app, async (port) => {
    for (let index = 0; index < 8; index++) assert.equal((await request(port, '/health')).status, 200);
    const spent = await request(port, '/expensive', { 'x-user': 'u1' });
    assert.equal(spent.status, 200);
    const reset = Number(spent.headers['x-ratelimit-reset']);
    assert.ok(Math.abs(reset - (Math.floor(Date.now() / 1000) + 60)) <= 2, `epoch reset ${reset}`);
    const denied = await request(port, '/expensive', { 'x-user': 'u1' });
    assert.equal(denied.status, 429);
    assert.equal(denied.headers['retry-after'], '60');
    assert.equal((await request(port, '/expensive', { 'x-user': 'u2' })).status, 200);
  });
});

test('Fastify: one plugin per route prefix (encapsulated registrations)', async () => {
  const clock = new ManualClock();
  const app = Fastify();
  await app.register(async (api) => {
    await api.register(cellgate, { limiter: new Limiter('1/minute', { clock, name: 'api' }) });
    api.get('/api/x', async () => 'api');
  });
  await app.register(async (search) => {
    await search.register(cellgate, { limiter: new Limiter('2/minute', { clock, name: 'search' }) });
    search.get('/search', async () => 'search');
  });
  app.get('/free', async () => 'free');
  await serveFastify(app, async (port) => {
    assert.equal((await request(port, '/api/x')).status, 200);
    assert.equal((await request(port, '/api/x')).status, 429);
    const search = await request(port, '/search');
    assert.equal(search.status, 200);
    assert.equal(search.headers['ratelimit-policy'], '"search";q=2;w=60');
    assert.equal((await request(port, '/search')).status, 200);
    assert.equal((await request(port, '/search')).status, 429);
    for (let index = 0; index < 3; index++) {
      const free = await request(port, '/free');
      assert.equal(free.status, 200);
      assert.equal(free.headers.ratelimit, undefined);
    }
  });
});

test('Fastify: bad options fail registration', async () => {
  const app = Fastify();
  app.register(cellgate, { limiter: 42 });
  await assert.rejects(app.ready(), TypeError);
  // @fastify/rate-limit's names are refused, naming cellgate's; Fastify's own `prefix` is not.
  const migrated = Fastify();
  migrated.register(cellgate, { limiter: '10/minute', max: 10, timeWindow: 60000 });
  await assert.rejects(migrated.ready(), { name: 'TypeError', message: /^options\.max: .*cellgate's: the count in the limiter's rate/ });
  const prefixed = Fastify();
  prefixed.register(cellgate, { limiter: '1/minute', prefix: '/v1' });
  await prefixed.ready();
  await prefixed.close();
});

test('Fastify: a full table is answered like any denial (429, the same headers, core\'s body)', async () => {
  const limiter = new Limiter('1/hour', { clock: new ManualClock(), maxKeys: 1 });
  const app = Fastify();
  await app.register(cellgate, { limiter, key: (request) => request.headers['x-key'] });
  app.get('/', async (request) => request.rateLimit.reason);
  await serveFastify(app, async (port) => {
    assert.equal((await request(port, '/', { 'x-key': 'victim' })).status, 200);
    const denied = await request(port, '/', { 'x-key': 'victim' });
    assert.equal(denied.status, 429);
    for (let index = 0; index < 40; index++) limiter.check(`fill:${index}`);
    const flooded = await request(port, '/', { 'x-key': 'a new client' });
    assert.equal(flooded.status, 429);
    assert.match(flooded.body, /^\{"error":"rate_limited","retry_after":\d+\}$/);
    assert.equal(flooded.headers['retry-after'], String(JSON.parse(flooded.body).retry_after));
    assert.equal(flooded.headers['content-type'], denied.headers['content-type']);
    const sent = (response) => Object.keys(response.headers).filter((name) => !['date', 'content-length', 'connection', 'keep-alive'].includes(name)).sort();
    assert.deepEqual(sent(flooded), sent(denied));
  });
});

test('Fastify: the per-dimension header styles', async () => {
  const { Policy } = require('cellgate');
  const policy = new Policy([{ name: 'requests', rate: '60/minute' }, { name: 'tokens', rate: '1000/minute', dimension: 'tokens' }], { clock: new ManualClock() });
  const app = Fastify();
  await app.register(cellgate, { limiter: policy, headers: 'openai', cost: () => ({ requests: 1, tokens: 400 }) });
  app.get('/', async () => 'ok');
  await serveFastify(app, async (port) => {
    const response = await request(port, '/');
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-ratelimit-remaining-tokens'], '600');
    assert.equal(response.headers['x-ratelimit-limit-requests'], '60');
  });
});
