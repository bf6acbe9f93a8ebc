'use strict';
// One Fastify app, three variants that differ only in the limiter in front of the route:
//   node fastify.js <none|cellgate|cellgate-legacy|peer> <port>
// none: no limiter; cellgate: the cellgate/fastify plugin (IETF headers); cellgate-legacy: the
// same plugin sending the X-RateLimit-* triple, as the peer does; peer: @fastify/rate-limit
// (its default in-memory store and default x-ratelimit-* headers). Every limiter keys by
// the client address and admits every request of the run (a billion a minute).
const path = require('node:path');
const Fastify = require('fastify');

const [variant, port] = process.argv.slice(2);
// Exit on SIGTERM (the driver's stop) through process.exit, so that --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
const LIMIT = 1_000_000_000;
const WINDOW_MS = 60_000;
const cellgateDir = process.env.CELLGATE_NODE_DIR || path.join(__dirname, '..', '..', '..', 'node');

async function main() {
  const app = Fastify({ logger: false });
  if (variant === 'cellgate' || variant === 'cellgate-legacy') {
    const { Limiter } = require(path.join(cellgateDir, 'lib', 'index.js'));
    await app.register(require(path.join(cellgateDir, 'lib', 'fastify.js')), {
      limiter: new Limiter(`${LIMIT}/minute`),
      headers: variant === 'cellgate' ? 'ietf' : 'legacy',
    });
  } else if (variant === 'peer') {
    await app.register(require('@fastify/rate-limit'), { max: LIMIT, timeWindow: WINDOW_MS });
  } else if (variant !== 'none') {
    throw new Error(`variant: expected none, cellgate, cellgate-legacy or peer, got ${variant}`);
  }
  app.get('/', async (request, reply) => {
    reply.type('text/plain');
    return 'ok';
  });
  await app.listen({ host: '127.0.0.1', port: Number(port) });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
