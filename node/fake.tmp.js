const Redis = require('ioredis');
const { RedisLimiter } = require('cellgate/redis');
(async () => {
  const io = new Redis(process.env.CELLGATE_REDIS_URL);
  let captured;
  const spy = { evalshaBuffer: async (...a) => (captured = await io.evalshaBuffer(...a)), evalBuffer: async (...a) => (captured = await io.evalBuffer(...a)) };
  const l0 = new RedisLimiter('1000000000/minute', { client: spy, prefix: 'f:' });
  await l0.check('k', 1, { nowNs: 5n });
  const reply = captured;
  io.disconnect();
  const fake = { evalshaBuffer: () => Promise.resolve(reply), evalBuffer: () => Promise.resolve(reply) };
  const l = new RedisLimiter('1000000000/minute', { client: fake, prefix: 'f:' });
  for (let i = 0; i < 20000; i++) await l.check('k', 1, { nowNs: 5n });
  const N = 200000; const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await l.check('k', 1, { nowNs: 5n });
  console.log('client-side us per check', Number(process.hrtime.bigint() - t) / N / 1e3, l.stats());
})();
