'use strict';
// A denial never reaches the route, whatever `onLimited` does: a callback that sends nothing,
// throws, rejects or calls `next()` still leaves the client with the default answer (the
// status, the rate-limit headers and the JSON body); one that answers itself keeps its answer.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const Fastify = require('fastify');
const { Limiter, ManualClock } = require('cellgate');
const { rateLimit } = require('cellgate/express');
const cellgateFastify = require('cellgate/fastify');
const { request, close } = require('./http');

const DEFAULT_BODY = '{"error":"rate_limited","retry_after":60}';

/** Three requests under 1/minute: one admitted, two denied. */
async function threeRequests(port) {
  const responses = [];
  for (let index = 0; index < 3; index++) responses.push(await request(port, '/'));
  return responses;
}

function assertDefaultDenial(response) {
  assert.equal(response.status, 429);
  assert.equal(response.headers['retry-after'], '60');
  assert.equal(response.headers['ratelimit-policy'], '"1-in-1min";q=1;w=60');
  assert.equal(response.headers.ratelimit, '"1-in-1min";r=0;t=60');
  assert.match(response.headers['content-type'], /^application\/json/);
  assert.equal(response.body, DEFAULT_BODY);
}

// Each callback, and what the two denied requests must get with it.
const CALLBACKS = {
  'does nothing': {
    express: () => {},
    fastify: () => {},
    expect: assertDefaultDenial,
  },
  throws: {
    express: () => { throw new Error('onLimited failed'); },
    fastify: () => { throw new Error('onLimited failed'); },
    expect: assertDefaultDenial,
  },
  'is async and sends nothing': {
    express: async () => { await new Promise((resolve) => setTimeout(resolve, 5)); },
    fastify: async () => { await new Promise((resolve) => setTimeout(resolve, 5)); },
    expect: assertDefaultDenial,
  },
  'is async and rejects': {
    express: async () => { await new Promise((resolve) => setTimeout(resolve, 5)); throw new Error('late'); },
    fastify: async () => { await new Promise((resolve) => setTimeout(resolve, 5)); throw new Error('late'); },
    expect: assertDefaultDenial,
  },
  'sends its own reply': {
    express: (req, res) => { res.status(503).json({ busy: true }); },
    fastify: (request, reply) => reply.code(503).send({ busy: true }),
    expect: (response) => {
      assert.equal(response.status, 503);
      assert.deepEqual(JSON.parse(response.body), { busy: true });
      assert.equal(response.headers['retry-after'], '60', 'the rate-limit headers were set before it ran');
    },
  },
  'is async and sends its own reply': {
    express: async (req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      res.status(503).json({ busy: true });
    },
    fastify: async (request, reply) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      reply.code(503).send({ busy: true });
    },
    expect: (response) => {
      assert.equal(response.status, 503);
      assert.deepEqual(JSON.parse(response.body), { busy: true });
    },
  },
};

for (const [what, callbacks] of Object.entries(CALLBACKS)) {
  test(`Express: an onLimited that ${what} never lets a denial reach the route`, async () => {
    let handled = 0;
    const warnings = [];
    const onWarning = (warning) => warnings.push(warning);
    process.on('warning', onWarning);
    const app = express();
    app.use(rateLimit({ limiter: new Limiter('1/minute', { clock: new ManualClock() }), onLimited: callbacks.express }));
    app.get('/', (req, res) => {
      handled += 1;
      res.send('handled');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const [first, ...denied] = await threeRequests(server.address().port);
      assert.equal(first.status, 200);
      for (const response of denied) callbacks.expect(response);
      assert.equal(handled, 1, 'only the admitted request reached the route');
    } finally {
      await close(server);
      process.off('warning', onWarning);
    }
    if (/throws|rejects/.test(what)) {
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(warnings.some((warning) => /onLimited/.test(warning.message)), 'the error is reported, not lost');
    }
  });

  test(`Fastify: an onLimited that ${what} never lets a denial reach the handler`, async () => {
    let handled = 0;
    const logged = [];
    const app = Fastify({ logger: { level: 'error', stream: { write: (line) => logged.push(line) } } });
    await app.register(cellgateFastify, { limiter: new Limiter('1/minute', { clock: new ManualClock() }), onLimited: callbacks.fastify });
    app.get('/', async () => {
      handled += 1;
      return 'handled';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const [first, ...denied] = await threeRequests(app.server.address().port);
      assert.equal(first.status, 200);
      for (const response of denied) callbacks.expect(response);
      assert.equal(handled, 1, 'only the admitted request reached the handler');
    } finally {
      await app.close();
    }
    if (/throws|rejects/.test(what)) {
      assert.ok(logged.some((line) => /onLimited/.test(line)), 'the error is logged, not lost');
    }
  });
}

test('Express: an onLimited that calls next() does not reach the route; next(error) reaches the error handler', async () => {
  let handled = 0;
  let errors = 0;
  const app = express();
  const limiter = new Limiter('1/minute', { clock: new ManualClock() });
  app.use('/next', rateLimit({ limiter, key: () => 'next', onLimited: (req, res, next) => next() }));
  app.use('/route', rateLimit({ limiter, key: () => 'route', onLimited: (req, res, next) => next('route') }));
  app.use('/error', rateLimit({ limiter, key: () => 'error', onLimited: (req, res, next) => next(new Error('custom')) }));
  app.get(['/next', '/route', '/error'], (req, res) => {
    handled += 1;
    res.send('handled');
  });
  app.use((error, req, res, next) => {
    errors += 1;
    res.status(418).send(error.message);
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const port = server.address().port;
    for (const path of ['/next', '/route']) {
      assert.equal((await request(port, path)).status, 200);
      assertDefaultDenial(await request(port, path));
    }
    assert.equal((await request(port, '/error')).status, 200);
    const custom = await request(port, '/error');
    assert.equal(custom.status, 418);
    assert.equal(custom.body, 'custom');
    assert.equal(handled, 3, 'only the admitted requests reached the route');
    assert.equal(errors, 1);
  } finally {
    await close(server);
  }
});

test('Fastify: a reply sent by onLimited through a slow async onSend hook is not answered twice', async () => {
  const logged = [];
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line) => logged.push(line) } } });
  app.addHook('onSend', async (request, reply, payload) => {
    await new Promise((resolve) => setTimeout(resolve, 10));
    return payload;
  });
  await app.register(cellgateFastify, {
    limiter: new Limiter('1/minute', { clock: new ManualClock() }),
    onLimited: (request, reply) => { reply.code(503).send('busy'); },
  });
  app.get('/', async () => 'handled');
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const [first, ...denied] = await threeRequests(app.server.address().port);
    assert.equal(first.status, 200);
    for (const response of denied) {
      assert.equal(response.status, 503);
      assert.equal(response.body, 'busy');
    }
  } finally {
    await app.close();
  }
  assert.deepEqual(logged, [], 'no "reply already sent" warning or error');
});

test('Express: an onLimited that throws a value with no string form still gets the default answer', async () => {
  const app = express();
  app.use(rateLimit({ limiter: new Limiter('1/minute', { clock: new ManualClock() }), onLimited: () => { throw Object.create(null); } }));
  app.get('/', (req, res) => res.send('handled'));
  const onWarning = () => {};
  process.on('warning', onWarning);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const [first, ...denied] = await threeRequests(server.address().port);
    assert.equal(first.status, 200);
    for (const response of denied) assertDefaultDenial(response);
  } finally {
    await close(server);
    process.off('warning', onWarning);
  }
});
