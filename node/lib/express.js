'use strict';
// cellgate/express: rate limiting for Express (4 and 5) in three lines:
//
//   const { Limiter } = require('cellgate');
//   const { rateLimit } = require('cellgate/express');
//   app.use(rateLimit({ limiter: new Limiter('100/minute') }));

const { settings, evaluate, headersFor, bodyFor, statusFor, isThenable } = require('./middleware');

/** Express's client address: `req.ip` (which honours `trust proxy`), else the socket's. */
function clientAddress(req) {
  return req.ip || (req.socket && req.socket.remoteAddress) || '';
}

/**
 * A middleware that checks every request against `options.limiter` (a Limiter, a Policy, a
 * RedisLimiter, whose decisions are awaited, or a rate string). Options: `key(req, res)` (default: the client address), `cost(req, res)`
 * (default 1; a Policy takes its costs object), `skip(req, res)` (true lets the request
 * through unchecked), `headers` ('ietf' by default, 'legacy', 'legacy-epoch' or false),
 * `statusCode` (429), `onLimited(req, res, next, decision)` (answers a denial instead of the
 * JSON; if it sends nothing, or throws, the default answer is sent all the same: a denial
 * never reaches the route). Any of the functions may return a promise.
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
    if (!res.headersSent) setHeaders(res, decision);
    if (decision.allowed) {
      next();
      return;
    }
    if (config.onLimited === undefined) {
      sendLimited(res, decision);
      return;
    }
    // A denial never reaches the route, whatever the callback does: its `next(error)` goes on
    // to the error handlers, but `next()`, `next('route')` and `next('router')` would run the
    // route, so they do nothing; once it returns (or its promise settles), a response it did
    // not send is the default answer.
    let forwarded = false;
    const nextError = (error) => {
      if (error === undefined || error === null || error === 'route' || error === 'router' || forwarded) return;
      if (res.headersSent) {
        reportOnLimited(error, 'its error came after a response was sent');
        return;
      }
      forwarded = true;
      next(error);
    };
    const finish = () => {
      if (!forwarded && !res.headersSent && !res.writableEnded) sendLimited(res, decision);
    };
    const failed = (error) => {
      const what = res.headersSent || forwarded ? 'after it answered' : `the default ${config.statusCode} answer was sent`;
      finish();
      reportOnLimited(error, what);
    };
    let result;
    try {
      result = config.onLimited(req, res, nextError, decision);
    } catch (error) {
      failed(error);
      return;
    }
    if (isThenable(result)) {
      result.then(finish, failed);
      return;
    }
    finish();
  }

  function setHeaders(res, decision) {
    const values = headersFor(config, decision);
    for (const name in values) res.setHeader(name, values[name]);
  }

  /** The default answer to a denial: the status, the headers, the JSON body. */
  function sendLimited(res, decision) {
    setHeaders(res, decision);
    res.statusCode = statusFor(config, decision);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(bodyFor(decision));
  }
}

/**
 * An `onLimited` that threw or rejected: the client got an answer all the same (the default
 * one if it had sent none), and the error is a process warning rather than lost (Express
 * has no logger of its own).
 */
function reportOnLimited(error, what) {
  let reason;
  try {
    reason = error instanceof Error ? error.message : String(error);
  } catch {
    reason = 'a value that cannot be shown';
  }
  const warning = new Error(`cellgate/express: onLimited failed (${what}): ${reason}`, { cause: error });
  warning.name = 'CellgateWarning';
  warning.code = 'CELLGATE_ON_LIMITED_FAILED';
  process.emitWarning(warning);
}

module.exports = { rateLimit, default: rateLimit };
