'use strict';
// cellgate/express: rate limiting for Express (4 and 5) in three lines:
//
//   const { Limiter } = require('cellgate');
//   const { rateLimit } = require('cellgate/express');
//   app.use(rateLimit({ limiter: new Limiter('100/minute') }));

const { settings, evaluate, headersFor, bodyFor, isThenable } = require('./middleware');

/** Express's client address: `req.ip` (which honours `trust proxy`), else the socket's. */
function clientAddress(req) {
  return req.ip || (req.socket && req.socket.remoteAddress) || '';
}

/**
 * A middleware that checks every request against `options.limiter` (a Limiter, a Policy or
 * a rate string). Options: `key(req, res)` (default: the client address), `cost(req, res)`
 * (default 1; a Policy takes its costs object), `skip(req, res)` (true lets the request
 * through unchecked), `headers` ('ietf' by default, 'legacy', 'legacy-epoch' or false),
 * `statusCode` (429), `onLimited(req, res, next, decision)` (replaces the JSON answer).
 * Any of the functions may return a promise.
 *
 * Sets `req.rateLimit` to the decision, sends the rate-limit headers on every checked
 * response, and answers a denial with the status, `Retry-After` and the JSON body
 * `{"error":"rate_limited","retry_after":N}`.
 */
function rateLimit(options) {
  const config = settings(options, clientAddress);
  return function cellgateRateLimit(req, res, next) {
    try {
      if (config.skip !== undefined) {
        const skipped = config.skip(req, res);
        if (isThenable(skipped)) {
          skipped.then((yes) => (yes ? next() : run(req, res, next)), next);
          return;
        }
        if (skipped) {
          next();
          return;
        }
      }
      run(req, res, next);
    } catch (error) {
      next(error);
    }
  };

  function run(req, res, next) {
    const pending = evaluate(config, req, res, (decision) => respond(req, res, next, decision));
    if (pending !== undefined) pending.catch(next);
  }

  function respond(req, res, next, decision) {
    req.rateLimit = decision;
    if (!res.headersSent) {
      const values = headersFor(config, decision);
      for (const name in values) res.setHeader(name, values[name]);
    }
    if (decision !== null && decision.allowed) {
      next();
      return;
    }
    if (config.onLimited !== undefined) {
      config.onLimited(req, res, next, decision);
      return;
    }
    res.statusCode = config.statusCode;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(bodyFor(decision));
  }
}

module.exports = { rateLimit, default: rateLimit };
