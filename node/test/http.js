'use strict';
// Small helpers for the server tests: real servers on 127.0.0.1, real requests.

const http = require('node:http');

function request(port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

function close(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    if (server.closeAllConnections) server.closeAllConnections();
  });
}

/** Runs `fn(port)` with an Express app listening on 127.0.0.1, closing it however `fn` ends. */
async function serveExpress(app, fn) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    await fn(server.address().port);
  } finally {
    await close(server);
  }
}

/** Runs `fn(port)` with a Fastify app listening on 127.0.0.1, closing it however `fn` ends. */
async function serveFastify(app, fn) {
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    await fn(app.server.address().port);
  } finally {
    await app.close();
  }
}

module.exports = { request, listen, close, serveExpress, serveFastify };
