'use strict';
// What the Express middleware and the Fastify plugin share: option checking, the key and cost
// of a request (sync or async), the decision, and the 429 answer.

const { Limiter, Policy, headers, limitedBody, clientKey } = require('./index');
const { STYLES } = require('./headers');
const { argTypeError } = require('./errors');
const { RedisLimiter } = require('./redis');

function isThenable(value) {
  return value !== null && typeof value === 'object' && typeof value.then === 'function';
}

function optionalFunction(value, name) {
  if (value !== undefined && typeof value !== 'function') throw argTypeError(name, 'a function', value);
  return value;
}

/**
 * Validates middleware options once, at setup, so that a typo fails at startup and not on
 * the first request. `defaultKey(req)` is the framework's client address.
 */
function settings(options, clientAddress) {
  if (options === null || typeof options !== 'object') throw argTypeError('options', 'an object with a limiter', options);
  const ipv6PrefixLen = options.ipv6PrefixLen === undefined ? 56 : options.ipv6PrefixLen;
  clientKey('::1', { ipv6PrefixLen }); // validates it now
  // The default key: the client address as a key (IPv6 grouped by prefix); an address that
  // does not parse (a Unix socket's empty one) is keyed as its text.
  const defaultKey = (request) => {
    const address = clientAddress(request);
    try {
      return clientKey(address, { ipv6PrefixLen });
    } catch {
      return address;
    }
  };
  let limiter = options.limiter;
  if (typeof limiter === 'string') limiter = new Limiter(limiter);
  if (!(limiter instanceof Limiter) && !(limiter instanceof Policy) && !(limiter instanceof RedisLimiter)) {
    throw argTypeError('options.limiter', "a Limiter, a Policy, a RedisLimiter or a rate string such as '100/minute'", limiter);
  }
  const style = options.headers === undefined ? 'ietf' : options.headers;
  if (style !== false && !STYLES.includes(style)) {
    throw argTypeError('options.headers', `${STYLES.map((name) => `'${name}'`).join(', ')} or false`, style);
  }
  const statusCode = options.statusCode === undefined ? 429 : options.statusCode;
  if (!Number.isInteger(statusCode) || statusCode < 400 || statusCode > 599) {
    throw argTypeError('options.statusCode', 'an HTTP error status (400 to 599)', statusCode);
  }
  return {
    limiter,
    key: optionalFunction(options.key, 'options.key') || defaultKey,
    cost: optionalFunction(options.cost, 'options.cost'),
    skip: optionalFunction(options.skip, 'options.skip'),
    onLimited: optionalFunction(options.onLimited, 'options.onLimited'),
    style,
    statusCode,
  };
}

/**
 * Runs `limiter.check(key, cost)`: a full table is a denial like any other (core's answer).
 * A RedisLimiter answers with a promise.
 */
function decide(config, key, cost) {
  const { limiter } = config;
  if (limiter instanceof Policy || limiter instanceof RedisLimiter) return limiter.check(key, cost);
  return limiter.check(key, cost === undefined ? undefined : { cost });
}

/**
 * Computes the key and cost (each may be a promise) and calls `then(decision)` with the
 * decision. Returns undefined when everything was synchronous,
 * otherwise a promise.
 */
function evaluate(config, request, reply, then) {
  const key = config.key(request, reply);
  if (isThenable(key)) return key.then((resolved) => withKey(config, request, reply, resolved, then));
  return withKey(config, request, reply, key, then);
}

function withKey(config, request, reply, key, then) {
  if (config.cost === undefined) return decided(decide(config, key, undefined), then);
  const cost = config.cost(request, reply);
  if (isThenable(cost)) return cost.then((resolved) => decided(decide(config, key, resolved), then));
  return decided(decide(config, key, cost), then);
}

/** `then(decision)`, once the decision is there (an async limiter's is a promise). */
function decided(decision, then) {
  if (isThenable(decision)) return decision.then(then);
  return then(decision);
}

/**
 * The status of a denial: `statusCode`, except 503 for one the outage policy 'closed' made
 * (Redis could not be asked: the service is unavailable, the client is not over its limit).
 */
function statusFor(config, decision) {
  return decision.reason === 'failed_closed' ? 503 : config.statusCode;
}

/** The headers to send for a decision (with headers disabled, only a denial's Retry-After). */
function headersFor(config, decision) {
  if (config.style === false) {
    if (decision.allowed) return {};
    const all = headers(decision);
    return all['Retry-After'] === undefined ? {} : { 'Retry-After': all['Retry-After'] };
  }
  return headers(decision, { style: config.style });
}

function bodyFor(decision) {
  return limitedBody(decision);
}

module.exports = { settings, evaluate, headersFor, bodyFor, statusFor, isThenable };
