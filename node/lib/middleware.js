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

/** The options `settings` reads: every other name is an error. */
const OPTIONS = new Set(['limiter', 'key', 'cost', 'ipv6PrefixLen', 'skip', 'headers', 'statusCode', 'onLimited']);

/**
 * Option names of express-rate-limit and @fastify/rate-limit (a half-migrated configuration)
 * and what to write instead: without this error they would be ignored and the middleware
 * would run with defaults.
 */
const PEER_OPTIONS = {
  windowMs: "the window in the limiter's rate ('100/15 minutes')",
  timeWindow: "the window in the limiter's rate ('100/minute')",
  max: "the count in the limiter's rate ('100/minute'), or a Policy",
  limit: "the count in the limiter's rate ('100/minute'), or a Policy",
  keyGenerator: 'key',
  handler: 'onLimited',
  onExceeded: 'onLimited',
  errorResponseBuilder: 'onLimited',
  standardHeaders: "headers ('ietf', 'draft-6', 'draft-7', 'legacy', 'legacy-epoch', 'anthropic', 'openai' or false)",
  legacyHeaders: "headers ('legacy')",
  addHeaders: 'headers',
  allowList: 'skip',
  store: 'limiter (a Limiter, a Policy, or a RedisLimiter from cellgate/redis)',
  redis: 'limiter: new RedisLimiter(rate, { client }) from cellgate/redis',
  message: 'onLimited',
  skipFailedRequests: 'no count modes yet in cellgate/express and cellgate/fastify (limiter.refund after the response)',
  skipSuccessfulRequests: 'no count modes yet in cellgate/express and cellgate/fastify (limiter.refund after the response)',
};

/** A TypeError for the first option `settings` does not read, naming cellgate's option. */
function checkOptionNames(options, frameworkOptions) {
  for (const name of Object.keys(options)) {
    if (OPTIONS.has(name) || frameworkOptions.includes(name)) continue;
    const instead = Object.prototype.hasOwnProperty.call(PEER_OPTIONS, name) ? PEER_OPTIONS[name] : undefined;
    const hint = instead === undefined ? `; the options are ${[...OPTIONS].join(', ')}` : `; cellgate's: ${instead}`;
    throw new TypeError(`options.${name}: not an option of cellgate's middleware${hint}`);
  }
}

/**
 * Validates middleware options once, at setup, so that a typo fails at startup and not on
 * the first request. `clientAddress(req)` is the framework's client address; an option name
 * neither cellgate's nor in `frameworkOptions` (the framework's own, such as Fastify's
 * `prefix`) is a TypeError naming it, and cellgate's equivalent for a peer's option.
 */
function settings(options, clientAddress, frameworkOptions = []) {
  if (options === null || typeof options !== 'object') throw argTypeError('options', 'an object with a limiter', options);
  checkOptionNames(options, frameworkOptions);
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
