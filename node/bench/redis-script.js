'use strict';
// `make bench-redis-script`: Redis's own time per EVALSHA of cellgate's script (INFO
// commandstats, usec_per_call), for one quota and for three over two dimensions, through
// RedisLimiter over ioredis: 10,000 sequential checks on 100 keys per round after a warm-up,
// three rounds, printed sorted with their median. This is the script's cost inside Redis,
// which bounds what one server decides per second whatever the clients do.
//
//   node bench/redis-script.js    (CELLGATE_REDIS_URL: redis-store/with-redis.sh sets it)

const Redis = require('ioredis');
const { RedisLimiter } = require('cellgate/redis');

const URL = process.env.CELLGATE_REDIS_URL;
if (!URL) {
  console.error('CELLGATE_REDIS_URL is unset: run `make bench-redis-script`');
  process.exit(2);
}

const CASES = [
  ['1 quota', '1000000/second', 1],
  ['3 quotas over 2 dimensions', [
    { name: 'a', rate: '1000000/second' },
    { name: 'b', rate: '10000000/minute' },
    { name: 'c', rate: '100000000/hour', dimension: 'tokens' },
  ], { requests: 1, tokens: 5 }],
];

(async () => {
  const client = new Redis(URL);
  const admin = new Redis(URL);
  for (const [name, limits, costs] of CASES) {
    // A quota nothing reaches: every call does its full admitting work.
    const limiter = new RedisLimiter(limits, { client, prefix: `bench-script:${name}:`, timeoutMs: 1000 });
    for (let i = 0; i < 2000; i++) await limiter.check(`k${i % 100}`, costs);
    const rounds = [];
    for (let round = 0; round < 3; round++) {
      await admin.config('RESETSTAT');
      for (let i = 0; i < 10000; i++) await limiter.check(`k${i % 100}`, costs);
      const line = (await admin.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_evalsha:'));
      rounds.push(Number(/usec_per_call=([\d.]+)/.exec(line)[1]));
    }
    rounds.sort((a, b) => a - b);
    const { remote } = limiter.stats();
    console.log(`${name}: EVALSHA ${rounds.join(', ')} us of Redis's time (median ${rounds[1]}); ${remote} decided by Redis`);
  }
  client.disconnect();
  admin.disconnect();
})();
