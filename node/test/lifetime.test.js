'use strict';
// Limiters, policies and their fast functions are collected without crashing or leaking:
// the addon's finalizers run (Rc counts, the shared array's reference), and a limiter keeps
// working while only its methods are reachable.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');
const { Limiter, Policy, ManualClock } = require('cellgate');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

test('thousands of limiters and policies are collected; survivors still work', async () => {
  const clock = new ManualClock();
  const survivor = new Limiter('2/second', { clock, maxKeys: 16 });
  const check = survivor.check.bind(survivor);
  const before = process.memoryUsage().rss;
  for (let round = 0; round < 5; round++) {
    for (let index = 0; index < 2000; index++) {
      const limiter = new Limiter('5/second', { clock, maxKeys: 16 });
      assert.equal(limiter.check(`k${index}`).allowed, true);
      const policy = new Policy([{ name: 'a', rate: '1/s' }, { name: 'b', rate: '9/s', dimension: 't' }], { clock, maxKeys: 16 });
      const { reservation } = policy.reserve('k', { requests: 1, t: 2 });
      if (index % 2 === 0) reservation.settle({ t: 1 });
    }
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  const grown = process.memoryUsage().rss - before;
  assert.ok(grown < 200 * 1024 * 1024, `rss grew by ${grown} bytes`);
  assert.equal(check('x').allowed, true);
  assert.equal(check('x').allowed, true);
  assert.equal(check('x').allowed, false);
});
