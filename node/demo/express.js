'use strict';
// `make demo-node`: an Express app limited to 5 requests per 10 seconds per client, on a
// free port of 127.0.0.1; eight requests show five 200s turning into 429s, with the rate-limit
// headers and the JSON body. The server is always stopped, and the script exits by itself.

const http = require('node:http');
const express = require('express');
const { Limiter } = require('cellgate');
const { rateLimit } = require('cellgate/express');

const app = express();
app.use(rateLimit({ limiter: new Limiter('5 per 10 seconds', { name: 'demo' }) }));
app.get('/hello', (req, res) => res.json({ hello: 'world', remaining: req.rateLimit.remaining }));

function get(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ res, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

async function main() {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address();
  console.log(`Express on http://127.0.0.1:${port}/hello, limited to '5 per 10 seconds' per client\n`);
  try {
    for (let index = 1; index <= 8; index++) {
      const { res, body } = await get(port, '/hello');
      const shown = ['ratelimit', 'retry-after']
        .filter((name) => res.headers[name] !== undefined)
        .map((name) => `${name}: ${res.headers[name]}`)
        .join('  ');
      console.log(`#${index}  ${res.statusCode}  ${shown}`);
      console.log(`     ${body}`);
    }
    console.log(`\nRateLimit-Policy: ${(await get(port, '/hello')).res.headers['ratelimit-policy']}`);
  } finally {
    server.close();
    server.closeAllConnections?.();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
