'use strict';
// A child process of redis-processes.test.js: `node redis-child.js URL PREFIX KIND ATTEMPTS`
// waits for "go" on stdin, then checks ATTEMPTS times on one key (Redis's clock) and prints
// the JSON `{ admitted, reasons }`.

const { RedisLimiter } = require('cellgate/redis');
const { clients } = require('./redis-support');

async function main() {
  const [url, prefix, kind, attempts] = process.argv.slice(2);
  const connected = await clients(url);
  const { client } = connected.find((each) => each.kind === kind);
  const limiter = new RedisLimiter('100/hour', { client, prefix, outage: 'closed', timeoutMs: 2000 });
  await new Promise((resolve) => process.stdin.once('data', resolve));
  let admitted = 0;
  const reasons = {};
  // Eight in flight at a time, as a server under load would have them.
  let next = 0;
  const worker = async () => {
    while (next < Number(attempts)) {
      next += 1;
      const decision = await limiter.check('shared-key');
      if (decision.allowed) admitted += 1;
      reasons[decision.reason] = (reasons[decision.reason] || 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  process.stdout.write(JSON.stringify({ admitted, reasons }));
  connected.forEach((each) => each.close());
}

// `node --test test/` runs every file here: without the arguments it is no child, and does nothing.
if (process.argv.length >= 6) {
  main().catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
}
