'use strict';
// What survives and what the outage policy decides: SCRIPT FLUSH mid-run (NOSCRIPT -> EVAL,
// counted, no decision lost); the server killed (each policy decides, within the timeout,
// says so in `reason` and in `stats()`; Express answers 503 for 'closed'); the server
// restarted (decisions go back to Redis by themselves). Both client kinds.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const { RedisLimiter } = require('cellgate/redis');
const { rateLimit } = require('cellgate/express');
const { SKIP, clients, freePort, startServer, uniquePrefix } = require('./redis-support');
const { request, listen, close } = require('./http');

test('SCRIPT FLUSH mid-run: the script is sent again, and exactly the quota is admitted', { skip: SKIP }, async () => {
  const connected = await clients();
  after(() => connected.forEach((each) => each.close()));
  for (const { kind, client } of connected) {
    const limiter = new RedisLimiter('20/hour', { client, prefix: uniquePrefix('flush'), outage: 'open' });
    let admitted = 0;
    for (let index = 0; index < 10; index++) admitted += (await limiter.check('key')).allowed ? 1 : 0;
    const loadsBefore = limiter.stats().scriptLoads;
    if (kind === 'ioredis') await client.script('FLUSH');
    else await client.sendCommand(['SCRIPT', 'FLUSH']);
    for (let index = 0; index < 15; index++) {
      const decision = await limiter.check('key');
      assert.equal(decision.reason, 'limit', `${kind}: check ${index} after the flush decided by Redis`);
      admitted += decision.allowed ? 1 : 0;
    }
    const stats = limiter.stats();
    assert.equal(admitted, 20, kind);
    assert.equal(stats.scriptLoads, loadsBefore + 1, `${kind}: one full send after the flush`);
    assert.equal(stats.errors, 0, kind);
    assert.equal(stats.remote, 25, kind);
  }
});

async function until(what, probe, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('the server killed: each outage policy decides in time; after a restart Redis decides again', { skip: SKIP }, async () => {
  const port = await freePort();
  let server = await startServer(port);
  after(() => server && server.kill());
  const connected = await clients(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 }, { socket: { reconnectStrategy: () => 50 } });
  after(() => connected.forEach((each) => each.close()));
  const options = { timeoutMs: 100, retryIntervalMs: 300 };
  const limiters = connected.map(({ kind, client }) => ({
    kind,
    fallback: new RedisLimiter('3/hour', { ...options, client, prefix: uniquePrefix('fallback') }),
    open: new RedisLimiter('3/hour', { ...options, client, prefix: uniquePrefix('open'), outage: 'open' }),
    closed: new RedisLimiter('3/hour', { ...options, client, prefix: uniquePrefix('closed'), outage: 'closed', outageRetryAfterMs: 2000 }),
  }));
  const app = express();
  app.use(rateLimit({ limiter: limiters[0].closed, key: () => 'http-key' }));
  app.get('/', (req, res) => res.send('ok'));
  const http = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => http.once('listening', resolve));
  after(() => close(http));
  const httpPort = http.address().port;

  // Up: Redis decides; the default policy is 'fallback'.
  for (const each of limiters) {
    assert.equal(each.fallback.outage, 'fallback');
    for (const policy of ['fallback', 'open', 'closed']) {
      const decision = await each[policy].check(`up-${policy}`);
      assert.equal(decision.reason, 'limit', `${each.kind} ${policy}`);
      assert.equal(decision.remaining, 2);
    }
  }
  assert.equal((await request(httpPort, '/')).status, 200);

  await server.kill();
  server = undefined;
  for (const each of limiters) {
    const started = Date.now();
    const fallback = [];
    for (let index = 0; index < 4; index++) fallback.push(await each.fallback.check('down'));
    assert.deepEqual(fallback.map((decision) => decision.reason), ['fallback', 'fallback', 'fallback', 'fallback'], each.kind);
    // This process's own limiter, with the same quota: 3 admitted, then denied with a wait.
    assert.deepEqual(fallback.map((decision) => decision.allowed), [true, true, true, false], each.kind);
    assert.ok(fallback[3].retryAfterMs > 0);
    const open = await each.open.check('down');
    assert.equal(open.reason, 'failed_open', each.kind);
    assert.equal(open.allowed, true);
    const closed = await each.closed.check('down');
    assert.equal(closed.reason, 'failed_closed', each.kind);
    assert.equal(closed.allowed, false);
    assert.equal(closed.retryAfterMs, 2000);
    // Nothing hangs: one timeout per limiter at most (the others skip Redis for retryIntervalMs).
    assert.ok(Date.now() - started < 1000, `${each.kind}: ${Date.now() - started} ms`);
    const stats = each.fallback.stats();
    assert.equal(stats.fallback, 4, JSON.stringify(stats));
    assert.ok(stats.errors >= 1 && stats.skipped >= 1 && stats.errors + stats.skipped === 4, JSON.stringify(stats));
    assert.equal(each.open.stats().failedOpen, 1);
    assert.equal(each.closed.stats().failedClosed, 1);
  }
  // Express answers a 'closed' outage with 503, Retry-After and the JSON body.
  const unavailable = await request(httpPort, '/');
  assert.equal(unavailable.status, 503);
  assert.equal(unavailable.headers['retry-after'], '2');
  assert.deepEqual(JSON.parse(unavailable.body), { error: 'rate_limited', retry_after: 2 });

  server = await startServer(port);
  for (const each of limiters) {
    for (const policy of ['fallback', 'open', 'closed']) {
      await until(`${each.kind} ${policy} back on Redis`, async () => (await each[policy].check('after')).reason === 'limit');
    }
    // The new server holds nothing: the key that was checked while it was down starts full.
    const decision = await each.fallback.check('down-again');
    assert.equal(decision.reason, 'limit');
    assert.equal(decision.remaining, 2);
  }
  await until('Express back on Redis', async () => (await request(httpPort, '/')).status === 200);
});
