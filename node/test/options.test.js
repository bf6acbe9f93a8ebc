'use strict';
// The middleware option set through real servers on 127.0.0.1: count modes, a limiter chosen
// per request, allowList, methods, onExceeded, Fastify's per-route config and hook.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const Fastify = require('fastify');
const { Limiter, ManualClock } = require('cellgate');
const { rateLimit } = require('cellgate/express');
const cellgate = require('cellgate/fastify');
const { request, serveExpress, serveFastify } = require('./http');

/** A login route: `?ok=1` succeeds (200), anything else fails (401). */
const login = (req, res) => res.status(req.query.ok ? 200 : 401).end();

test("Express count: 'failed': failed logins count, successful ones are refunded", async () => {
  const clock = new ManualClock();
  const app = express();
  app.use(rateLimit({ limiter: new Limiter('2/hour', { clock }), count: 'failed' }));
  app.get('/login', login);
  await serveExpress(app, async (port) => {
    for (let i = 0; i < 4; i += 1) assert.equal((await request(port, '/login?ok=1')).status, 200, 'successes cost nothing');
    assert.equal((await request(port, '/login')).status, 401);
    assert.equal((await request(port, '/login')).status, 401);
    assert.equal((await request(port, '/login?ok=1')).status, 429, 'two failures spent the quota');
  });
});

test("Express count: 'successful' and countWhen", async () => {
  const clock = new ManualClock();
  const app = express();
  app.use('/a', rateLimit({ limiter: new Limiter('1/hour', { clock }), count: 'successful' }));
  app.use('/b', rateLimit({ limiter: new Limiter('1/hour', { clock }), countWhen: (status) => status === 418 }));
  app.get('/a', login);
  app.get('/b', (req, res) => res.status(req.query.tea ? 418 : 200).end());
  await serveExpress(app, async (port) => {
    assert.equal((await request(port, '/a')).status, 401);
    assert.equal((await request(port, '/a')).status, 401, 'failures are refunded');
    assert.equal((await request(port, '/a?ok=1')).status, 200);
    assert.equal((await request(port, '/a?ok=1')).status, 429);
    assert.equal((await request(port, '/b')).status, 200);
    assert.equal((await request(port, '/b')).status, 200, 'not a 418: refunded');
    assert.equal((await request(port, '/b?tea=1')).status, 418);
    assert.equal((await request(port, '/b')).status, 429);
  });
  assert.throws(() => rateLimit({ limiter: '1/s', count: 'failed', countWhen: () => true }), TypeError);
  assert.throws(() => rateLimit({ limiter: '1/s', count: 'sometimes' }), /count/);
});

test('Express: a limiter per request (per plan), and a misconfigured one is a 500', async () => {
  const clock = new ManualClock();
  const free = new Limiter('1/hour', { clock });
  const paid = new Limiter('3/hour', { clock });
  const app = express();
  app.use('/plan', rateLimit({ limiter: (req) => (req.headers['x-plan'] === 'paid' ? paid : free), key: (req) => String(req.headers['x-user']) }));
  app.use('/broken', rateLimit({ limiter: () => 'not a limiter' }));
  app.get('/plan', (req, res) => res.end('ok'));
  app.get('/broken', (req, res) => res.end('ok'));
  const warnings = [];
  const onWarning = (warning) => warnings.push(warning);
  process.on('warning', onWarning);
  try {
    await serveExpress(app, async (port) => {
      assert.equal((await request(port, '/plan', { 'x-user': 'ann' })).status, 200);
      assert.equal((await request(port, '/plan', { 'x-user': 'ann' })).status, 429);
      for (let i = 0; i < 3; i += 1) assert.equal((await request(port, '/plan', { 'x-user': 'bob', 'x-plan': 'paid' })).status, 200);
      assert.equal((await request(port, '/plan', { 'x-user': 'bob', 'x-plan': 'paid' })).status, 429);
      const broken = await request(port, '/broken');
      assert.equal(broken.status, 500);
      assert.equal(broken.body, '{"error":"rate_limit_misconfigured"}');
      assert.equal((await request(port, '/broken')).status, 500);
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings.filter((w) => /limiter/.test(w.message)).length, 1, 'warned once');
  } finally {
    process.off('warning', onWarning);
  }
});

test('Express: allowList (an IP and a key, or a function), methods, onExceeded', async () => {
  const clock = new ManualClock();
  const exceeded = [];
  const app = express();
  app.use('/ip', rateLimit({ limiter: new Limiter('1/hour', { clock }), allowList: ['127.0.0.1'] }));
  app.use('/key', rateLimit({ limiter: new Limiter('1/hour', { clock }), key: (req) => String(req.headers['x-key']), allowList: ['vip'] }));
  app.use('/fn', rateLimit({ limiter: new Limiter('1/hour', { clock }), allowList: (req, key) => req.headers['x-ok'] === '1' && key !== '' }));
  app.use('/post', rateLimit({ limiter: new Limiter('1/hour', { clock }), methods: ['post'], onExceeded: (req, decision) => exceeded.push(decision.retryAfterMs) }));
  for (const path of ['/ip', '/key', '/fn']) app.get(path, (req, res) => res.end('ok'));
  app.all('/post', (req, res) => res.end('ok'));
  await serveExpress(app, async (port) => {
    for (let i = 0; i < 3; i += 1) {
      const allowed = await request(port, '/ip');
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers.ratelimit, undefined, 'an allowed request gets no headers');
    }
    for (let i = 0; i < 3; i += 1) assert.equal((await request(port, '/key', { 'x-key': 'vip' })).status, 200);
    assert.equal((await request(port, '/key', { 'x-key': 'ann' })).status, 200);
    assert.equal((await request(port, '/key', { 'x-key': 'ann' })).status, 429);
    for (let i = 0; i < 3; i += 1) assert.equal((await request(port, '/fn', { 'x-ok': '1' })).status, 200);
    assert.equal((await request(port, '/fn')).status, 200);
    assert.equal((await request(port, '/fn')).status, 429);
    for (let i = 0; i < 3; i += 1) assert.equal((await request(port, '/post')).status, 200, 'GET is not limited');
    assert.deepEqual(exceeded, []);
  });
  assert.throws(() => rateLimit({ limiter: '1/s', methods: ['FETCH'] }), /methods/);
  assert.throws(() => rateLimit({ limiter: '1/s', allowList: 'vip' }), /allowList/);
  assert.throws(() => rateLimit({ limiter: '1/s', onExceeded: 1 }), /onExceeded/);
});

test('Express: methods and onExceeded on a POST route', async () => {
  const clock = new ManualClock();
  const exceeded = [];
  const app = express();
  app.use(rateLimit({ limiter: new Limiter('1/minute', { clock }), methods: ['POST'], onExceeded: (req, decision) => exceeded.push(decision.allowed) }));
  app.post('/', (req, res) => res.end('ok'));
  await serveExpress(app, async (port) => {
    const post = (path) => new Promise((resolve, reject) => {
      const req = require('node:http').request({ host: '127.0.0.1', port, path, method: 'POST', agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
      req.on('error', reject);
      req.end();
    });
    assert.equal(await post('/'), 200);
    assert.equal(await post('/'), 429);
    assert.equal(await post('/'), 429);
    assert.deepEqual(exceeded, [false, false], 'called once per denial');
  });
});

test('Fastify: per-route config.rateLimit (and false) under one registration, a preHandler hook with an after-auth key', async () => {
  const clock = new ManualClock();
  const app = Fastify();
  app.addHook('onRequest', async (request) => {
    request.user = request.headers['x-user'];
  });
  await app.register(cellgate, { limiter: new Limiter('2/hour', { clock }), hook: 'preHandler', key: (request) => `user:${request.user}` });
  app.get('/', async () => 'ok');
  app.get('/strict', { config: { rateLimit: { limiter: new Limiter('1/hour', { clock }) } } }, async () => 'ok');
  app.get('/health', { config: { rateLimit: false } }, async () => 'ok');
  await serveFastify(app, async (port) => {
    assert.equal((await request(port, '/', { 'x-user': 'ann' })).status, 200);
    assert.equal((await request(port, '/', { 'x-user': 'ann' })).status, 200);
    assert.equal((await request(port, '/', { 'x-user': 'ann' })).status, 429);
    assert.equal((await request(port, '/', { 'x-user': 'bob' })).status, 200, 'keyed by the authenticated user');
    assert.equal((await request(port, '/strict', { 'x-user': 'ann' })).status, 200);
    assert.equal((await request(port, '/strict', { 'x-user': 'ann' })).status, 429);
    for (let i = 0; i < 5; i += 1) {
      const health = await request(port, '/health', { 'x-user': 'ann' });
      assert.equal(health.status, 200);
      assert.equal(health.headers.ratelimit, undefined);
    }
  });
});

test("Fastify: a route's own count: 'failed' settles on that route; the others count every request", async () => {
  const clock = new ManualClock();
  const app = Fastify();
  // The plugin's options count every request, so only the route's options need the hooks.
  await app.register(cellgate, { limiter: new Limiter('2/hour', { clock }), key: () => 'alice' });
  app.get('/login', { config: { rateLimit: { count: 'failed', limiter: new Limiter('1/hour', { clock }) } } },
    async (request, reply) => reply.code(request.query.ok ? 200 : 401).send('x'));
  app.get('/', async () => 'ok');
  await serveFastify(app, async (port) => {
    // Successful logins are refunded once answered: only the failure counts.
    for (let i = 0; i < 3; i += 1) assert.equal((await request(port, '/login?ok=1')).status, 200);
    assert.equal((await request(port, '/login')).status, 401);
    assert.equal((await request(port, '/login?ok=1')).status, 429);
    // The plugin's own limiter counts every request, successful or not.
    assert.equal((await request(port, '/')).status, 200);
    assert.equal((await request(port, '/')).status, 200);
    assert.equal((await request(port, '/')).status, 429);
  });
});

test("Fastify: count: 'failed', and a misspelled route option fails at startup", async () => {
  const clock = new ManualClock();
  const app = Fastify();
  await app.register(cellgate, { limiter: new Limiter('1/hour', { clock }), count: 'failed' });
  app.get('/login', async (request, reply) => reply.code(request.query.ok ? 200 : 401).send('x'));
  await serveFastify(app, async (port) => {
    for (let i = 0; i < 3; i += 1) assert.equal((await request(port, '/login?ok=1')).status, 200);
    assert.equal((await request(port, '/login')).status, 401);
    assert.equal((await request(port, '/login?ok=1')).status, 429);
  });
  const broken = Fastify();
  await broken.register(cellgate, { limiter: '10/s' });
  assert.throws(() => broken.get('/', { config: { rateLimit: { limitr: '1/s' } } }, async () => 'ok'), /limitr/);
  await broken.close();
  await assert.rejects(async () => {
    const other = Fastify();
    await other.register(cellgate, { limiter: '10/s', hook: 'onSend' });
  }, /hook/);
});
