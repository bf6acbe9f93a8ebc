'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const { Limiter, Policy, ManualClock } = require('cellgate');
const { rateLimit } = require('cellgate/express');
const { request, listen, close, serveExpress } = require('./http');

test('200s turn into 429s with RateLimit headers, Retry-After and a JSON body', async () => {
  const clock = new ManualClock();
  const app = express();
  app.use(rateLimit({ limiter: new Limiter('3/minute', { clock, name: 'api' }) }));
  app.get('/', (req, res) => res.json({ remaining: req.rateLimit.remaining }));
  await serveExpress(app, async (port) => {
    for (let index = 0; index < 3; index++) {
      const response = await request(port, '/');
      assert.equal(response.status, 200);
      assert.deepEqual(JSON.parse(response.body), { remaining: 2 - index });
      assert.equal(response.headers['ratelimit-policy'], '"api";q=3;w=60');
      // t: the seconds until the next unit returns (draft-10), 20 s at 3/minute.
      assert.equal(response.headers.ratelimit, `"api";r=${2 - index};t=20`);
      assert.equal(response.headers['retry-after'], undefined);
    }
    const limited = await request(port, '/');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '20');
    assert.equal(limited.headers.ratelimit, '"api";r=0;t=20');
    assert.match(limited.headers['content-type'], /^application\/json/);
    assert.equal(limited.body, '{"error":"rate_limited","retry_after":20}');
    clock.advance(20_000);
    assert.equal((await request(port, '/')).status, 200);
  });
});

test('key, cost and skip functions (sync and async), legacy headers', async () => {
  const clock = new ManualClock();
  const app = express();
  app.use(rateLimit({
    limiter: new Limiter('10/second', { clock }),
    key: async (req) => req.get('x-api-key') || 'anonymous',
    cost: (req) => Number(req.query.cost || 1),
    skip: (req) => req.path === '/health',
    headers: 'legacy',
  }));
  app.get('/health', (req, res) => res.json({ rateLimit: req.rateLimit === undefined ? 'none' : 'set' }));
  app.get('/work', (req, res) => res.send('ok'));
  app.use((error, req, res, next) => res.status(error instanceof RangeError ? 500 : 599).end());
  await serveExpress(app, async (port) => {
    for (let index = 0; index < 5; index++) assert.equal((await request(port, '/health')).status, 200);
    const heavy = await request(port, '/work?cost=10', { 'x-api-key': 'alice' });
    assert.equal(heavy.status, 200);
    assert.equal(heavy.headers['x-ratelimit-limit'], '10');
    assert.equal(heavy.headers['x-ratelimit-remaining'], '0');
    assert.equal(heavy.headers['x-ratelimit-reset'], '1');
    assert.equal(heavy.headers.ratelimit, undefined);
    const denied = await request(port, '/work', { 'x-api-key': 'alice' });
    assert.equal(denied.status, 429);
    assert.equal(denied.headers['retry-after'], '1');
    assert.equal((await request(port, '/work', { 'x-api-key': 'bob' })).status, 200, 'another key');
    const bad = await request(port, '/work?cost=1.5', { 'x-api-key': 'carol' });
    assert.equal(bad.status, 500, 'a bad cost is an error passed to next(), not a free request');
    assert.equal(JSON.parse((await request(port, '/health')).body).rateLimit, 'none');
  });
});

test('a Policy as the limiter, and onLimited replacing the answer', async () => {
  const clock = new ManualClock();
  const policy = new Policy([{ name: 'burst', rate: '2/second' }, { name: 'daily', rate: '3/day' }], { clock });
  const app = express();
  app.use(rateLimit({
    limiter: policy,
    onLimited: (req, res) => res.status(503).json({ binding: req.rateLimit.binding }),
  }));
  app.get('/', (req, res) => res.send('ok'));
  await serveExpress(app, async (port) => {
    assert.equal((await request(port, '/')).status, 200);
    const second = await request(port, '/');
    assert.equal(second.headers['ratelimit-policy'], '"burst";q=2;w=1,"daily";q=3;w=86400');
    const third = await request(port, '/');
    assert.equal(third.status, 503);
    assert.deepEqual(JSON.parse(third.body), { binding: 'burst' });
    clock.advance(1000);
    assert.equal((await request(port, '/')).status, 200);
    const daily = await request(port, '/');
    assert.equal(daily.status, 503);
    assert.deepEqual(JSON.parse(daily.body), { binding: 'daily' });
  });
});

test('a rate string is enough, and options are checked at setup', async () => {
  assert.throws(() => rateLimit({}), TypeError);
  assert.throws(() => rateLimit({ limiter: '10/s', headers: 'draft-8' }), TypeError);
  assert.throws(() => rateLimit({ limiter: '10/s', key: 'ip' }), TypeError);
  assert.throws(() => rateLimit({ limiter: '10/fortnight' }), RangeError);
  // A half-migrated express-rate-limit configuration is refused, naming cellgate's option.
  assert.throws(() => rateLimit({ limiter: '10/s', windowMs: 60000 }), {
    name: 'TypeError',
    message: /^options\.windowMs: not an option of cellgate's middleware; cellgate's: the window in the limiter's rate/,
  });
  assert.throws(() => rateLimit({ limiter: '10/s', keyGenerator: () => 'k' }), { message: /options\.keyGenerator: .*cellgate's: key$/ });
  assert.throws(() => rateLimit({ limiter: '10/s', skipFailedRequests: true }), { message: /options\.skipFailedRequests: .*count: 'successful'/ });
  assert.throws(() => rateLimit({ limiter: '10/s', limitr: 1 }), { message: /options\.limitr: .*the options are limiter, key, cost/ });
  assert.throws(() => rateLimit({ limiter: '10/s', prefix: '/v1' }), { message: /options\.prefix/ }, "Fastify's options are Fastify's only");
  const app = express();
  app.use(rateLimit({ limiter: '1/hour' }));
  app.get('/', (req, res) => res.send('ok'));
  await serveExpress(app, async (port) => {
    assert.equal((await request(port, '/')).status, 200);
    assert.equal((await request(port, '/')).status, 429, 'keyed by the client address');
  });
});

test('the default key groups IPv6 clients by /56 (behind a trusted proxy)', async () => {
  const app = express();
  app.set('trust proxy', true);
  app.use(rateLimit({ limiter: new Limiter('1/hour', { clock: new ManualClock() }) }));
  app.get('/', (req, res) => res.send('ok'));
  await serveExpress(app, async (port) => {
    assert.equal((await request(port, '/', { 'x-forwarded-for': '2001:db8:aa:bb::1' })).status, 200);
    assert.equal((await request(port, '/', { 'x-forwarded-for': '2001:db8:aa:cc::7' })).status, 429, 'same /56');
    assert.equal((await request(port, '/', { 'x-forwarded-for': '2001:db8:ab::1' })).status, 200, 'another /56');
    assert.equal((await request(port, '/', { 'x-forwarded-for': '192.0.2.1' })).status, 200);
    assert.equal((await request(port, '/', { 'x-forwarded-for': '::ffff:192.0.2.1' })).status, 429, 'the same IPv4 client');
  });
});

test('the default key stays the same across the kept keys of recent addresses being emptied', async () => {
  // More distinct addresses than the middleware keeps keys for (1,024): every one is still its
  // own bucket, before and after the kept keys are emptied, whether its key is kept or remade.
  const app = express();
  app.set('trust proxy', true);
  app.use(rateLimit({ limiter: new Limiter('1/hour', { clock: new ManualClock() }) }));
  app.get('/', (req, res) => res.send('ok'));
  const address = (index) => `10.0.${index >> 8}.${index & 255}`;
  await serveExpress(app, async (port) => {
    for (let index = 0; index < 1100; index += 1) {
      assert.equal((await request(port, '/', { 'x-forwarded-for': address(index) })).status, 200, address(index));
    }
    for (const index of [0, 1, 1023, 1024, 1099]) {
      assert.equal((await request(port, '/', { 'x-forwarded-for': address(index) })).status, 429, address(index));
    }
    assert.equal((await request(port, '/', { 'x-forwarded-for': '2001:db8:aa:bb::1' })).status, 200);
    assert.equal((await request(port, '/', { 'x-forwarded-for': '2001:db8:aa:cc::7' })).status, 429, 'same /56');
  });
});

test('the listen helper works for a plain server too', async () => {
  const server = require('node:http').createServer((req, res) => res.end('x'));
  const port = await listen(server);
  assert.equal((await request(port, '/')).body, 'x');
  await close(server);
});

test('a key flood (100,000 new keys into maxKeys 1000) is answered like any denial: 429, the same headers, core\'s body', async () => {
  const clock = new ManualClock();
  const limiter = new Limiter('1/hour', { clock, maxKeys: 1000 });
  const app = express();
  app.use(rateLimit({ limiter, key: (req) => req.get('x-key') }));
  app.get('/', (req, res) => res.send(req.rateLimit.reason));
  await serveExpress(app, async (port) => {
    assert.equal((await request(port, '/', { 'x-key': 'victim' })).status, 200);
    const denied = await request(port, '/', { 'x-key': 'victim' });
    assert.equal(denied.status, 429);
    // The flood, straight into the same limiter (100,000 requests over loopback would take
    // minutes here); then new clients over HTTP find the table full.
    let full = 0;
    for (let index = 0; index < 100_000; index++) if (limiter.check(`flood:${index}`).reason === 'table_full') full += 1;
    assert.ok(full > 90_000, `${full}`);
    const flooded = await request(port, '/', { 'x-key': 'a new client' });
    assert.equal(flooded.status, 429);
    assert.match(flooded.body, /^\{"error":"rate_limited","retry_after":\d+\}$/);
    assert.equal(flooded.headers['retry-after'], String(JSON.parse(flooded.body).retry_after));
    assert.equal(flooded.headers['ratelimit-policy'], '"1-in-1h";q=1;w=3600');
    assert.match(flooded.headers.ratelimit, /^"1-in-1h";r=0;t=\d+$/);
    assert.equal(flooded.headers['content-type'], denied.headers['content-type']);
    const sent = (response) => Object.keys(response.headers).filter((name) => !['date', 'content-length', 'connection', 'keep-alive', 'etag'].includes(name)).sort();
    assert.deepEqual(sent(flooded), sent(denied), 'the same headers as a denial by the limit');
    const victim = await request(port, '/', { 'x-key': 'victim' });
    assert.equal(victim.status, 429, 'the exhausted key stays denied');
  });
});

test("onFull 'allowUntracked' through Express: a new client that finds no room passes untracked", async () => {
  const limiter = new Limiter('1/hour', { clock: new ManualClock(), maxKeys: 1, onFull: 'allowUntracked' });
  const app = express();
  app.use(rateLimit({ limiter, key: (req) => req.get('x-key') }));
  app.get('/', (req, res) => res.send(req.rateLimit.reason));
  await serveExpress(app, async (port) => {
    for (let index = 0; index < 40; index++) limiter.check(`fill:${index}`);
    const response = await request(port, '/', { 'x-key': 'a new client' });
    assert.equal(response.status, 200);
    assert.equal(response.body, 'untracked');
  });
});
