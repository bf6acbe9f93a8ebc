'use strict';
// cellgate/express: rate limiting for Express (4 and 5) in three lines:
//
//   const { Limiter } = require('cellgate');
//   const { rateLimit } = require('cellgate/express');
//   app.use(rateLimit({ limiter: new Limiter('100/minute') }));

const {
  settings, evaluate, evaluateNow, exceeded, settle, warn, sentHeaders, bodyFor, statusFor, isThenable,
  MISCONFIGURED, MISCONFIGURED_BODY, STATUS_OF_AN_ERROR,
} = require('./middleware');

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
 * never reaches the route), `count` ('all', 'failed', 'successful') or `countWhen(status,
 * req, res)` (the requests that should not count are refunded after the response),
 * `allowList` (keys, IPs as the default key, or `(req, key)`), `methods`, `onExceeded(req,
 * decision)` (on every denial). `limiter` may also be a function of the request choosing its
 * limiter. Any of the functions may return a promise. node/README.md has the full table.
 *
 * Sets `req.rateLimit` to the decision, sends the rate-limit headers on every checked
 * response, and answers a denial with the status, `Retry-After` and the JSON body
 * `{"error":"rate_limited","retry_after":N}`.
 */
function rateLimit(options) {
  const config = settings(options, clientAddress);
  config.framework = 'cellgate/express';
  return function cellgateRateLimit(req, res, next) {
    try {
      if (config.direct) {
        // Every step synchronous (see evaluateNow): decided, with its headers, in one call.
        respond(req, res, next, evaluateNow(config, req, res, false));
        return;
      }
      const pending = evaluate(config, req, res, (result) => respond(req, res, next, result));
      if (pending !== undefined) pending.then(undefined, next);
    } catch (error) {
      next(error);
    }
  };

  function respond(req, res, next, result) {
    if (result === null) {
      next();
      return;
    }
    if (result === MISCONFIGURED) {
      res.statusCode = 500;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(MISCONFIGURED_BODY);
      return;
    }
    const { decision } = result;
    if (decision.allowed && config.counts !== undefined) countOnceAnswered(req, res, result);
    else if (!decision.allowed) {
      exceeded(config, req, decision, (error) => warn(config.framework, 'CELLGATE_ON_EXCEEDED_FAILED', 'onExceeded failed (the denial was answered all the same)', error));
    }
    answer(req, res, next, result);
  }

  /**
   * The count mode, once the status is known: on 'finish' (the response was sent), or on
   * 'close' before it finished (the client went away, the app crashed mid-response), which
   * counts as status 500.
   */
  function countOnceAnswered(req, res, checked) {
    let settled = false;
    const report = (error, what) => warn(config.framework, 'CELLGATE_COUNT_FAILED', what, error);
    const once = (status) => {
      if (settled) return;
      settled = true;
      res.off('finish', onFinish);
      res.off('close', onClose);
      settle(config, checked, status, req, res, report);
    };
    const onFinish = () => once(res.statusCode);
    const onClose = () => once(res.writableFinished ? res.statusCode : STATUS_OF_AN_ERROR);
    res.on('finish', onFinish);
    res.on('close', onClose);
  }

  /** Sends `result`'s headers and continues, or answers its denial. */
  function answer(req, res, next, result) {
    const { decision } = result;
    req.rateLimit = decision;
    const values = sentHeaders(config, result);
    if (!res.headersSent) setHeaders(res, values);
    if (decision.allowed) {
      next();
      return;
    }
    if (config.onLimited === undefined) {
      sendLimited(res, decision, values);
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
      if (!forwarded && !res.headersSent && !res.writableEnded) sendLimited(res, decision, values);
    };
    const failed = (error) => {
      const what = res.headersSent || forwarded ? 'after it answered' : `the default ${config.statusCode} answer was sent`;
      finish();
      reportOnLimited(error, what);
    };
    let answered;
    try {
      answered = config.onLimited(req, res, nextError, decision);
    } catch (error) {
      failed(error);
      return;
    }
    if (isThenable(answered)) {
      answered.then(finish, failed);
      return;
    }
    finish();
  }

  function setHeaders(res, values) {
    for (const name in values) res.setHeader(name, values[name]);
  }

  /** The default answer to a denial: the status, the headers (`values`), the JSON body. */
  function sendLimited(res, decision, values) {
    setHeaders(res, values);
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
