'use strict';
// One Express app, three variants that differ only in the limiter in front of the route:
//   node express.js <none|cellgate|peer> <port>
// none: no limiter; cellgate: cellgate/express; peer: express-rate-limit (in-memory store).
// Every limiter keys by the client address, admits every request of the run (a billion a
// minute) and sends its headers: cellgate the draft-10 RateLimit/RateLimit-Policy pair,
// express-rate-limit the draft-8 pair its README recommends (standardHeaders: 'draft-8',
// legacyHeaders: false).
const path = require('node:path');
const express = require('express');

const [variant, port] = process.argv.slice(2);
// Exit on SIGTERM (the driver's stop) through process.exit, so that --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
const LIMIT = 1_000_000_000;
const WINDOW_MS = 60_000;
const cellgateDir = process.env.CELLGATE_NODE_DIR || path.join(__dirname, '..', '..', '..', 'node');

const app = express();
app.disable('x-powered-by');
if (variant === 'cellgate') {
  const { Limiter } = require(path.join(cellgateDir, 'lib', 'index.js'));
  const { rateLimit } = require(path.join(cellgateDir, 'lib', 'express.js'));
  app.use(rateLimit({ limiter: new Limiter(`${LIMIT}/minute`) }));
} else if (variant === 'peer') {
  const { rateLimit } = require('express-rate-limit');
  app.use(rateLimit({ windowMs: WINDOW_MS, limit: LIMIT, standardHeaders: 'draft-8', legacyHeaders: false }));
} else if (variant !== 'none') {
  throw new Error(`variant: expected none, cellgate or peer, got ${variant}`);
}
app.get('/', (req, res) => {
  res.type('text/plain').send('ok');
});
app.listen(Number(port), '127.0.0.1');
