'use strict';
// What the Express middleware and the Fastify plugin share: option checking, the key and cost
// of a request (sync or async), the decision, and the 429 answer.

const { Limiter, Policy, headers, limitedBody, clientKey, TableFullError } = require('./index');
const { argTypeError } = require('./errors');

const STYLES = ['ietf', 'legacy', 'legacy-epoch'];
const TABLE_FULL_BODY = '{"error":"rate_limited","retry_after":1}';

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
  if (!(limiter instanceof Limiter) && !(limiter instanceof Policy)) {
    throw argTypeError('options.limiter', "a Limiter, a Policy or a rate string such as '100/minute'", limiter);
  }
  const style = options.headers === undefined ? 'ietf' : options.headers;
  if (style !== false && !STYLES.includes(style)) {
    throw argTypeError('options.headers', "'ietf', 'legacy', 'legacy-epoch' or false", style);
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

/** Runs `limiter.check(key, cost)`; a full table answers as a denial with a 1 s wait. */
function decide(config, key, cost) {
  const { limiter } = config;
  try {
    if (limiter instanceof Policy) return limiter.check(key, cost);
    return limiter.check(key, cost === undefined ? undefined : { cost });
  } catch (error) {
    if (error instanceof TableFullError) return null;
    throw error;
  }
}

/**
 * Computes the key and cost (each may be a promise) and calls `then(decision)` with the
 * decision (`null` for a full table). Returns undefined when everything was synchronous,
 * otherwise a promise.
 */
function evaluate(config, request, reply, then) {
  const key = config.key(request, reply);
  if (isThenable(key)) return key.then((resolved) => withKey(config, request, reply, resolved, then));
  return withKey(config, request, reply, key, then);
}

function withKey(config, request, reply, key, then) {
  if (config.cost === undefined) return then(decide(config, key, undefined));
  const cost = config.cost(request, reply);
  if (isThenable(cost)) return cost.then((resolved) => then(decide(config, key, resolved)));
  return then(decide(config, key, cost));
}

/** The headers to send for a decision (none when disabled; Retry-After only for a full table). */
function headersFor(config, decision) {
  if (decision === null) return { 'Retry-After': '1' };
  if (config.style === false) {
    if (decision.allowed) return {};
    const all = headers(decision);
    return all['Retry-After'] === undefined ? {} : { 'Retry-After': all['Retry-After'] };
  }
  return headers(decision, { style: config.style });
}

function bodyFor(decision) {
  return decision === null ? TABLE_FULL_BODY : limitedBody(decision);
}

module.exports = { settings, evaluate, headersFor, bodyFor, isThenable };
