'use strict';
// What the Express middleware and the Fastify plugin share: option checking, the key and cost
// of a request (sync or async), the decision, and the 429 answer.

const { Limiter, Policy, headers, limitedBody, clientKey } = require('./index');
const { STYLES, WALL_CLOCK_STYLES } = require('./headers');
const { kCheckWithHeaders } = require('./decision');
const { argTypeError } = require('./errors');
const { RedisLimiter } = require('./redis');

/** How many addresses' client keys a middleware keeps (see `defaultKey` in `settings`). */
const CLIENT_KEY_CACHE_SIZE = 1024;

function isThenable(value) {
  return value !== null && typeof value === 'object' && typeof value.then === 'function';
}

function optionalFunction(value, name) {
  if (value !== undefined && typeof value !== 'function') throw argTypeError(name, 'a function', value);
  return value;
}

/** The options `settings` reads: every other name is an error. */
const OPTIONS = new Set([
  'limiter', 'key', 'cost', 'ipv6PrefixLen', 'skip', 'headers', 'statusCode', 'onLimited',
  'count', 'countWhen', 'allowList', 'methods', 'onExceeded',
]);

/** The count modes: which admitted requests keep their cost once the status is known. */
const COUNT_MODES = {
  all: undefined,
  failed: (status) => status >= 400,
  successful: (status) => status < 400,
};

/**
 * The status a request is counted as when its response closed before it finished (the client
 * went away, the app crashed mid-response): Python's STATUS_OF_AN_ERROR. It counts under
 * 'failed' and is refunded under 'successful'.
 */
const STATUS_OF_AN_ERROR = 500;

/** The HTTP methods `methods` accepts (upper case). */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

/** The 500 answer to a request whose per-request limiter function returned no limiter. */
const MISCONFIGURED_BODY = '{"error":"rate_limit_misconfigured"}';
const MISCONFIGURED = Symbol('cellgate.misconfigured');

/**
 * Option names of express-rate-limit and @fastify/rate-limit (a half-migrated configuration)
 * and what to write instead: without this error they would be ignored and the middleware
 * would run with defaults.
 */
const PEER_OPTIONS = {
  windowMs: "the window in the limiter's rate ('100/15 minutes')",
  timeWindow: "the window in the limiter's rate ('100/minute')",
  max: "the count in the limiter's rate ('100/minute'), or a Policy; a function of the request: limiter as a function (req, res) => Limiter",
  limit: "the count in the limiter's rate ('100/minute'), or a Policy; a function of the request: limiter as a function (req, res) => Limiter",
  keyGenerator: 'key',
  handler: 'onLimited',
  errorResponseBuilder: 'onLimited',
  standardHeaders: "headers ('ietf', 'draft-6', 'draft-7', 'legacy', 'legacy-epoch', 'anthropic', 'openai' or false)",
  legacyHeaders: "headers ('legacy')",
  addHeaders: 'headers',
  store: 'limiter (a Limiter, a Policy, or a RedisLimiter from cellgate/redis)',
  redis: 'limiter: new RedisLimiter(rate, { client }) from cellgate/redis',
  message: 'onLimited',
  // erl's skipFailedRequests: true leaves failed requests uncounted, so only successful ones count.
  skipFailedRequests: "count: 'successful' (skipFailedRequests: true counts only successful requests)",
  skipSuccessfulRequests: "count: 'failed' (skipSuccessfulRequests: true counts only failed requests)",
  requestWasSuccessful: 'countWhen(statusCode, req, res) (true: the request counts)',
  ban: "the limiter's blockMs (new Limiter('5/minute', { blockMs: 900000 })): a block after a denial, answered 429",
  blockDuration: "the limiter's blockMs (new Limiter('5/minute', { blockMs: 900000 }))",
};

/** A TypeError for the first option `settings` does not read, naming cellgate's option. */
function checkOptionNames(options, frameworkOptions, where) {
  for (const name of Object.keys(options)) {
    if (OPTIONS.has(name) || frameworkOptions.includes(name)) continue;
    const instead = Object.prototype.hasOwnProperty.call(PEER_OPTIONS, name) ? PEER_OPTIONS[name] : undefined;
    const hint = instead === undefined ? `; the options are ${[...OPTIONS, ...frameworkOptions].join(', ')}` : `; cellgate's: ${instead}`;
    throw new TypeError(`${where}.${name}: not an option of cellgate's middleware${hint}`);
  }
}

function isLimiter(value) {
  return value instanceof Limiter || value instanceof Policy || value instanceof RedisLimiter;
}

const LIMITER_CLASSES = [Limiter, Policy, RedisLimiter];

/** `count` and `countWhen`: the predicate of (status, req, res), or undefined when every request counts. */
function countPredicate(options, where) {
  if (options.countWhen !== undefined) {
    if (typeof options.countWhen !== 'function') {
      throw argTypeError(`${where}.countWhen`, 'a function (statusCode, req, res) => boolean', options.countWhen);
    }
    if (options.count !== undefined) {
      throw new TypeError(`${where}.countWhen: replaces count; give one of them, not count: ${JSON.stringify(options.count)} as well`);
    }
    return options.countWhen;
  }
  const count = options.count === undefined ? 'all' : options.count;
  if (typeof count !== 'string' || !Object.prototype.hasOwnProperty.call(COUNT_MODES, count)) {
    throw argTypeError(`${where}.count`, "'all', 'failed' or 'successful'", count);
  }
  return COUNT_MODES[count];
}

/** `methods`: a Set of upper-case method names, or undefined (every method is limited). */
function methodSet(methods, where) {
  if (methods === undefined) return undefined;
  if (!Array.isArray(methods) || methods.length === 0) {
    throw argTypeError(`${where}.methods`, "a non-empty array of HTTP methods (['POST', 'PUT'])", methods);
  }
  const set = new Set();
  methods.forEach((method, index) => {
    const upper = typeof method === 'string' ? method.toUpperCase() : undefined;
    if (upper === undefined || !METHODS.includes(upper)) {
      throw argTypeError(`${where}.methods[${index}]`, `one of ${METHODS.join(', ')} (any case)`, method);
    }
    set.add(upper);
  });
  return set;
}

/** The text a key is compared as in an allow list (a Buffer's bytes as latin1, so any bytes compare). */
function keyText(key) {
  if (typeof key === 'string') return `s:${key}`;
  if (key instanceof Uint8Array) return `b:${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`;
  return undefined;
}

/**
 * `allowList`: a function `(req, key)`, or an array whose IP addresses become their client key
 * (under `ipv6PrefixLen`: an IPv6 entry allows its whole prefix) and whose other entries are
 * compared with the request's key as strings. Returns undefined or `(req, key) => boolean`.
 */
function allowPredicate(allowList, ipv6PrefixLen, where) {
  if (allowList === undefined) return undefined;
  if (typeof allowList === 'function') return allowList;
  if (!Array.isArray(allowList)) throw argTypeError(`${where}.allowList`, 'an array of keys and IP addresses, or a function (req, key) => boolean', allowList);
  const allowed = new Set();
  allowList.forEach((entry, index) => {
    if (typeof entry !== 'string') throw argTypeError(`${where}.allowList[${index}]`, 'a string (a key or an IP address)', entry);
    allowed.add(`s:${entry}`);
    let ipKey;
    try {
      ipKey = clientKey(entry, { ipv6PrefixLen });
    } catch {
      return; // not an address: compared as a key
    }
    allowed.add(keyText(ipKey));
  });
  return (request, key) => {
    const text = keyText(key);
    if (text !== undefined && allowed.has(text)) return true;
    // A Buffer key (the default key) against a string entry of the same bytes.
    return key instanceof Uint8Array && allowed.has(`s:${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8')}`);
  };
}

/** `onExceeded` or `countWhen` failing: a process warning naming the framework. */
function warn(framework, code, message, cause) {
  let reason;
  try {
    reason = cause instanceof Error ? cause.message : String(cause);
  } catch {
    reason = 'a value that cannot be shown';
  }
  const warning = new Error(`${framework}: ${message}${cause === undefined ? '' : `: ${reason}`}`, cause === undefined ? undefined : { cause });
  warning.name = 'CellgateWarning';
  warning.code = code;
  process.emitWarning(warning);
}

/**
 * Validates middleware options once, at setup, so that a typo fails at startup and not on
 * the first request. `clientAddress(req)` is the framework's client address; an option name
 * neither cellgate's nor in `frameworkOptions` (the framework's own, such as Fastify's
 * `prefix`) is a TypeError naming it, and cellgate's equivalent for a peer's option.
 * `where` is how messages name the options ('options', or a Fastify route's
 * 'config.rateLimit'); `shared` the state the configurations of one middleware share (the
 * misconfigured-limiter warning, given once per middleware).
 */
function settings(options, clientAddress, frameworkOptions = [], where = 'options', shared = { warned: false }) {
  if (options === null || typeof options !== 'object') throw argTypeError(where, 'an object with a limiter', options);
  checkOptionNames(options, frameworkOptions, where);
  const ipv6PrefixLen = options.ipv6PrefixLen === undefined ? 56 : options.ipv6PrefixLen;
  try {
    clientKey('::1', { ipv6PrefixLen }); // validates it now
  } catch (error) {
    error.message = error.message.replace(/^options\./, `${where}.`);
    throw error;
  }
  // The default key: the client address as a key (IPv6 grouped by prefix); an address that
  // does not parse (a Unix socket's empty one) is keyed as its text. The keys of recent
  // addresses are kept (a client sends many requests, often on one connection), at most
  // CLIENT_KEY_CACHE_SIZE of them: emptied when full, so a flood of new addresses costs a
  // native call each, as without it, and never more memory.
  const recentKeys = new Map();
  const defaultKey = (request) => {
    const address = clientAddress(request);
    let key = recentKeys.get(address);
    if (key !== undefined) return key;
    try {
      key = clientKey(address, { ipv6PrefixLen });
    } catch {
      key = address;
    }
    if (recentKeys.size >= CLIENT_KEY_CACHE_SIZE) recentKeys.clear();
    recentKeys.set(address, key);
    return key;
  };
  let limiter = options.limiter;
  if (typeof limiter === 'string') limiter = new Limiter(limiter);
  if (typeof limiter === 'function' && LIMITER_CLASSES.includes(limiter)) {
    throw argTypeError(`${where}.limiter`, `an instance (new ${limiter.name}(...)), not the class`, limiter);
  }
  if (!isLimiter(limiter) && typeof limiter !== 'function') {
    throw argTypeError(`${where}.limiter`, "a Limiter, a Policy, a RedisLimiter, a rate string such as '100/minute', or a function (req, res) returning one", limiter);
  }
  const style = options.headers === undefined ? 'ietf' : options.headers;
  if (style !== false && !STYLES.includes(style)) {
    throw argTypeError(`${where}.headers`, `${STYLES.map((name) => `'${name}'`).join(', ')} or false`, style);
  }
  const statusCode = options.statusCode === undefined ? 429 : options.statusCode;
  if (!Number.isInteger(statusCode) || statusCode < 400 || statusCode > 599) {
    throw argTypeError(`${where}.statusCode`, 'an HTTP error status (400 to 599)', statusCode);
  }
  const config = {
    options,
    limiter: isLimiter(limiter) ? limiter : undefined,
    limiterFor: isLimiter(limiter) ? undefined : limiter,
    key: optionalFunction(options.key, `${where}.key`) || defaultKey,
    cost: optionalFunction(options.cost, `${where}.cost`),
    skip: optionalFunction(options.skip, `${where}.skip`),
    onLimited: optionalFunction(options.onLimited, `${where}.onLimited`),
    onExceeded: optionalFunction(options.onExceeded, `${where}.onExceeded`),
    counts: countPredicate(options, where),
    allowed: allowPredicate(options.allowList, ipv6PrefixLen, where),
    methods: methodSet(options.methods, where),
    style,
    // The options `headers` is called with, made once rather than per response.
    headerOptions: style === false ? undefined : { style },
    // The style as the native check renders it (evaluateNow), and whether it shows the time.
    styleIndex: STYLES.indexOf(style),
    readsWallClock: WALL_CLOCK_STYLES.has(style),
    statusCode,
    shared,
  };
  // Nothing configured that may be asynchronous or skip the limiter: `evaluateNow` decides
  // in one synchronous call (an in-process or host-wide Limiter or Policy, the default key).
  config.direct = (config.limiter instanceof Limiter || config.limiter instanceof Policy)
    && config.key === defaultKey && config.cost === undefined && config.skip === undefined
    && config.allowed === undefined && config.methods === undefined;
  return config;
}

/**
 * The options of one route (Fastify's `config.rateLimit`) over the middleware's: the route's
 * names override the global ones (`count` and `countWhen` replace each other), and the
 * global limiter is the one instance (a global rate string is not a new limiter per route).
 */
function routeOptions(config, route, frameworkOptions = []) {
  const merged = { ...config.options, limiter: config.limiter || config.limiterFor };
  for (const name of frameworkOptions) delete merged[name];
  if (route.count !== undefined || route.countWhen !== undefined) {
    delete merged.count;
    delete merged.countWhen;
  }
  return { ...merged, ...route };
}

/**
 * Runs `limiter.check(key, cost)`: a full table is a denial like any other (core's answer).
 * A RedisLimiter answers with a promise.
 */
function decide(limiter, key, cost) {
  if (limiter instanceof Policy || limiter instanceof RedisLimiter) return limiter.check(key, cost);
  return limiter.check(key, cost === undefined ? undefined : { cost });
}

/** `fn(value)` now, or once the promise `value` resolves. */
function chain(value, fn) {
  return isThenable(value) ? value.then(fn) : fn(value);
}

/**
 * Decides a request: `then(result)` with `null` when it passes unlimited (a method not
 * limited, `skip`, the allow list: no headers, no `rateLimit`), MISCONFIGURED when the
 * per-request limiter function returned no limiter, or `{ decision, limiter, key, cost }`.
 * Returns undefined when everything was synchronous, otherwise a promise (which rejects with
 * the error of a user function).
 */
function evaluate(config, request, reply, then) {
  if (config.methods !== undefined && !config.methods.has(String(request.method).toUpperCase())) return then(null);
  if (config.skip === undefined) return withKey(config, request, reply, then);
  return chain(config.skip(request, reply), (skipped) => (skipped ? then(null) : withKey(config, request, reply, then)));
}

/**
 * `evaluate` for a configuration whose every step is synchronous (`config.direct`): the
 * result, `{ decision, limiter, key, cost, headers }`, returned at once, without the
 * callbacks. With headers on, the check renders them in the same native call (names in lower
 * case when `lowercase`); `sentHeaders` reads them.
 */
function evaluateNow(config, request, reply, lowercase) {
  const { limiter } = config;
  const key = config.key(request, reply);
  if (config.style === false) return { decision: decide(limiter, key, undefined), limiter, key, cost: undefined, headers: undefined };
  const nowUnixS = config.readsWallClock ? Math.floor(Date.now() / 1000) : 0;
  const { decision, headers: rendered } = limiter[kCheckWithHeaders](key, config.styleIndex, nowUnixS, lowercase);
  return { decision, limiter, key, cost: undefined, headers: rendered };
}

function withKey(config, request, reply, then) {
  return chain(config.key(request, reply), (key) => {
    if (config.allowed === undefined) return withLimiter(config, request, reply, key, then);
    return chain(config.allowed(request, key), (allowed) => (allowed ? then(null) : withLimiter(config, request, reply, key, then)));
  });
}

function withLimiter(config, request, reply, key, then) {
  if (config.limiterFor === undefined) return withCost(config, request, reply, config.limiter, key, then);
  return chain(config.limiterFor(request, reply), (limiter) => {
    if (!isLimiter(limiter)) {
      if (!config.shared.warned) {
        config.shared.warned = true;
        warn(
          config.framework || 'cellgate',
          'CELLGATE_LIMITER_MISCONFIGURED',
          `the limiter function returned ${describeValue(limiter)}, not a Limiter, a Policy or a RedisLimiter; such requests are answered 500 without reaching the route (warned once)`,
        );
      }
      return then(MISCONFIGURED);
    }
    return withCost(config, request, reply, limiter, key, then);
  });
}

function describeValue(value) {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor && value.constructor.name ? `an instance of ${value.constructor.name}` : 'an object';
  return typeof value === 'string' ? 'a string' : typeof value;
}

function withCost(config, request, reply, limiter, key, then) {
  const checked = (cost) => chain(decide(limiter, key, cost), (decision) => then({ decision, limiter, key, cost }));
  if (config.cost === undefined) return checked(undefined);
  return chain(config.cost(request, reply), checked);
}

/**
 * `onExceeded(req, decision)` on a denial, before it is answered: its errors (a throw, a
 * rejection) are reported through `report(error)`; it cannot change the answer.
 */
function exceeded(config, request, decision, report) {
  if (config.onExceeded === undefined) return;
  try {
    const result = config.onExceeded(request, decision);
    if (isThenable(result)) result.then(undefined, report);
  } catch (error) {
    report(error);
  }
}

/**
 * Once an admitted request's status is known: refunds its cost (the same key, cost and
 * limiter) when the count mode says it should not count. A failing `countWhen` keeps the
 * cost; a failing refund (a RedisLimiter's rejection) is reported through `report(error,
 * what)`, never an unhandled rejection.
 */
function settle(config, checked, status, request, reply, report) {
  if (config.counts === undefined || !checked.decision.allowed || checked.decision.reason === 'untracked') return;
  let counts;
  try {
    counts = config.counts(status, request, reply);
  } catch (error) {
    report(error, 'countWhen failed (the request counts)');
    return;
  }
  if (counts) return;
  const { limiter, key, cost } = checked;
  try {
    const refunded = limiter instanceof Limiter ? limiter.refund(key, cost === undefined ? undefined : { cost }) : limiter.refund(key, cost);
    if (isThenable(refunded)) refunded.then(undefined, (error) => report(error, 'the refund failed (the request counts)'));
  } catch (error) {
    report(error, 'the refund failed (the request counts)');
  }
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
  return headers(decision, config.headerOptions);
}

/** The headers to send for `result` (evaluate's): those its check rendered, or `headersFor`'s. */
function sentHeaders(config, result) {
  return result.headers === undefined ? headersFor(config, result.decision) : result.headers;
}

function bodyFor(decision) {
  return limitedBody(decision);
}

module.exports = {
  settings, routeOptions, evaluate, evaluateNow, exceeded, settle, warn, sentHeaders, bodyFor, statusFor, isThenable,
  MISCONFIGURED, MISCONFIGURED_BODY, STATUS_OF_AN_ERROR, COUNT_MODES,
};
