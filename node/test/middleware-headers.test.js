'use strict';
// The middleware's check renders its headers in the same native call as the decision
// (evaluateNow, Limiter/Policy's kCheckWithHeaders): every style, one quota, two quotas and a
// Policy, admitted and denied, must send exactly the headers `headers(decision)` renders for
// the same decision, in Fastify (names in lower case) and Express.

const path = require('node:path');
const { test } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const Fastify = require('fastify');
const { Limiter, Policy, ManualClock, headers, clientKey } = require('cellgate');
const cellgate = require('cellgate/fastify');
const { rateLimit } = require('cellgate/express');
const { request, serveExpress } = require('./http');

const STYLES = ['ietf', 'legacy', 'legacy-epoch', 'anthropic', 'openai', 'draft-6', 'draft-7'];

/** A fresh limiter of each kind over `clock` (the twin of each is made the same way). */
const KINDS = {
  'one quota': (clock) => new Limiter('3/second', { clock }),
  'two quotas': (clock) => new Limiter('3/second; 100/minute', { clock }),
  policy: (clock) => new Policy([{ name: 'rps', rate: '3/second' }, { name: 'rpm', rate: '100/minute' }], { clock }),
};

/** `headers` in lower case, the way an HTTP client reports them. */
function lower(values) {
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [name.toLowerCase(), value]));
}

/** The response's headers of the rate-limit families (every header core writes). */
function rateHeaders(all) {
  const names = /^(ratelimit|x-ratelimit-|anthropic-ratelimit-|retry-after)/;
  return Object.fromEntries(Object.entries(all).filter(([name]) => names.test(name)));
}

/**
 * The headers the twin limiter's same decision renders: with the wall clock read now, or a
 * second earlier (the response may have been rendered just before a second turned).
 */
function expectedFor(twin, style) {
  const decision = twin.check(clientKey('127.0.0.1'));
  const now = Math.floor(Date.now() / 1000);
  return [now, now - 1].map((nowUnixS) => lower(headers(decision, { style, nowUnixS })));
}

function assertOneOf(actual, candidates, what) {
  if (candidates.some((candidate) => JSON.stringify(Object.entries(candidate).sort()) === JSON.stringify(Object.entries(actual).sort()))) return;
  assert.deepEqual(actual, candidates[0], what);
}

for (const style of STYLES) {
  for (const [kind, make] of Object.entries(KINDS)) {
    test(`Fastify sends headers(decision)'s headers: ${style}, ${kind}`, async () => {
      const clock = new ManualClock();
      const twin = make(clock);
      const app = Fastify();
      await app.register(cellgate, { limiter: make(clock), headers: style });
      app.get('/', async () => 'ok');
      try {
        const statuses = [];
        for (let index = 0; index < 5; index++) {
          const response = await app.inject({ method: 'GET', url: '/', remoteAddress: '127.0.0.1' });
          statuses.push(response.statusCode);
          assertOneOf(rateHeaders(response.headers), expectedFor(twin, style), `request ${index}`);
        }
        assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      } finally {
        await app.close();
      }
    });

    test(`Express sends headers(decision)'s headers: ${style}, ${kind}`, async () => {
      const clock = new ManualClock();
      const twin = make(clock);
      const app = express();
      app.use(rateLimit({ limiter: make(clock), headers: style }));
      app.get('/', (req, res) => res.send('ok'));
      await serveExpress(app, async (port) => {
        const statuses = [];
        for (let index = 0; index < 5; index++) {
          const response = await request(port, '/');
          statuses.push(response.status);
          assertOneOf(rateHeaders(response.headers), expectedFor(twin, style), `request ${index}`);
        }
        assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      });
    });
  }
}

test('a check that renders leaves the next plain check and headers(decision) as they were', () => {
  const clock = new ManualClock();
  const limiter = new Limiter('2/second', { clock });
  // The package-private symbol, from the installed package's own file (not an export).
  const { kCheckWithHeaders } = require(path.join(path.dirname(require.resolve('cellgate')), 'decision.js'));
  const styleIndex = 1; // 'legacy'
  const fused = limiter[kCheckWithHeaders]('k', styleIndex, 0, false);
  assert.deepEqual(fused.headers, headers(fused.decision, { style: 'legacy' }));
  assert.equal(fused.decision.remaining, 1);
  // A key the native call refuses throws before anything is charged or rendered...
  assert.throws(() => limiter[kCheckWithHeaders](42, styleIndex, 0, false), TypeError);
  // ...and the next plain check renders nothing (and charges once).
  const plain = limiter.check('k');
  assert.equal(plain.remaining, 0);
  assert.deepEqual(Object.keys(headers(plain)), ['RateLimit-Policy', 'RateLimit']);
  // An index that is no style, or a wall-clock style without a second, is the RangeError of
  // the rendering, thrown before anything is charged.
  assert.throws(() => limiter[kCheckWithHeaders]('other', 99, 0, false), /options\.style/);
  const legacyEpoch = STYLES.indexOf('legacy-epoch');
  assert.throws(() => limiter[kCheckWithHeaders]('other', legacyEpoch, -1, false), /options\.nowUnixS/);
  assert.throws(() => limiter[kCheckWithHeaders]('other', legacyEpoch, Number.NaN, false), RangeError);
  assert.equal(limiter.peek('other').remaining, 2);
});
