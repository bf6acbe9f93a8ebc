// The ESM entry points give the same objects as the CommonJS ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import cellgate, { Limiter, ManualClock, Policy, headers, limitedBody, RateLimitError } from 'cellgate';
import rateLimitDefault, { rateLimit } from 'cellgate/express';
import fastifyPlugin from 'cellgate/fastify';
import RedisLimiterDefault, { RedisLimiter, SCRIPT_SHA1 } from 'cellgate/redis';

const require = createRequire(import.meta.url);

test('ESM and CommonJS share one module instance', () => {
  assert.equal(Limiter, require('cellgate').Limiter);
  assert.equal(cellgate.Limiter, Limiter);
  assert.equal(rateLimit, require('cellgate/express').rateLimit);
  assert.equal(rateLimitDefault, rateLimit);
  assert.equal(fastifyPlugin, require('cellgate/fastify'));
  assert.equal(RedisLimiter, require('cellgate/redis').RedisLimiter);
  assert.equal(RedisLimiterDefault, RedisLimiter);
  assert.equal(SCRIPT_SHA1, require('cellgate/redis').SCRIPT_SHA1);
  for (const value of [ManualClock, Policy, headers, limitedBody, RateLimitError]) assert.equal(typeof value, 'function');
  const limiter = new Limiter('1/second', { clock: new ManualClock() });
  assert.equal(limiter.check('k').allowed, true);
});
