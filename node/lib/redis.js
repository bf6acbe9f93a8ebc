'use strict';
// cellgate/redis: the keyed limiter with its buckets in Redis, over the user's own client
// (ioredis, or node-redis v4+). Core holds the protocol (node/src/remote.rs over core's
// RemoteLimiter: the script, the argument bytes, the decoding and its check against core, the
// outage policy); this file only sends the bytes, under a timeout, and counts each path.
//
//   const Redis = require('ioredis');
//   const { RedisLimiter } = require('cellgate/redis');
//   const limiter = new RedisLimiter('100/minute', { client: new Redis() });

const { native, LAYOUT, OPS, REASONS, sharedArray } = require('./boundary');
const { argTypeError, outOfRange, fromNative } = require('./errors');
const { singleDecision, severalDecision } = require('./decision');
const { limiterOptions, blockOption } = require('./limiter');
const validate = require('./validate');

const { COSTS, BINDING, REASON, COST_NOT_GIVEN } = LAYOUT;
const { NativeRemoteLimiter } = native;
const SCRIPT = NativeRemoteLimiter.script();
const SCRIPT_SHA1 = NativeRemoteLimiter.scriptSha1();
// Where `encode` writes a call's id and its key's length (the bytes it returns are the key,
// then ARGV[2]).
const [CALL_ID, CALL_KEY_LEN] = NativeRemoteLimiter.callSlots();
const OUTAGES = ['fallback', 'open', 'closed'];
// node-redis v5+: the RESP type of a bulk string, mapped to Buffer (v4 reads `returnBuffers`).
const RESP_BLOB_STRING = 36;

/** A timeout of one call: rejects after `ms`, unless cleared. */
class TimeoutError extends Error {
  constructor(ms) {
    super(`cellgate/redis: no reply within ${ms} ms`);
    this.name = 'TimeoutError';
    this.code = 'ERR_CELLGATE_REDIS_TIMEOUT';
  }
}

/**
 * The user's client as one function `(command, args) => Promise<Buffer[]>`: ioredis (it has
 * `evalshaBuffer`) or node-redis v4+ (`sendCommand`, replies as Buffers).
 */
function sender(client) {
  if (client !== null && typeof client === 'object') {
    if (typeof client.evalshaBuffer === 'function' && typeof client.evalBuffer === 'function') {
      return {
        kind: 'ioredis',
        send: (command, script, key, params, argv) => (command === 'EVALSHA'
          ? client.evalshaBuffer(script, 1, key, params, argv)
          : client.evalBuffer(script, 1, key, params, argv)),
      };
    }
    if (typeof client.sendCommand === 'function') {
      const options = { returnBuffers: true, typeMapping: { [RESP_BLOB_STRING]: Buffer } };
      return {
        kind: 'node-redis',
        send: (command, script, key, params, argv) => client.sendCommand([command, script, '1', key, params, argv], options),
      };
    }
  }
  throw argTypeError('options.client', 'an ioredis client or a node-redis (v4+) client', client);
}

function isNoScript(error) {
  return error !== null && typeof error === 'object' && typeof error.message === 'string' && error.message.startsWith('NOSCRIPT');
}

/** An explicit time (tests, replays): a BigInt or a safe integer of nanoseconds. */
function nowOption(options, name) {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') throw argTypeError(name, 'an object', options);
  const now = options.nowNs;
  if (now === undefined) return undefined;
  if (typeof now === 'bigint') {
    if (now < 0n || now >= 1n << 64n) throw outOfRange(`${name}.nowNs`, 'from 0 to 2^64 - 1', now);
    return now;
  }
  return BigInt(validate.integer(now, `${name}.nowNs`, 0, Number.MAX_SAFE_INTEGER));
}

function nonNegative(value, name, fallback) {
  return value === undefined ? fallback : validate.integer(value, name, 0, Number.MAX_SAFE_INTEGER);
}

/**
 * A keyed limiter whose buckets live in Redis: one script call per decision, decisions
 * identical to the in-process `Limiter`/`Policy` (core's own: the reply is checked against
 * core before it is trusted), at Redis's clock (`TIME`) unless a call passes `nowNs`.
 *
 * `limits` is a rate string (as `Limiter`: `'100/minute'`, `'10/s; 1000/day'`, with the
 * options `burst`, `algorithm`, `refill`, `name`) or an array of entries (as `Policy`:
 * `{ name, rate, burst?, dimension? }`). Options: `client` (required: your ioredis or
 * node-redis client, with your pool, TLS, auth), `prefix` ('cellgate:'; no braces: the user
 * key is the Cluster hash tag), `outage` ('fallback', the default: this process's own limiter
 * with the same quotas decides; 'open': admit; 'closed': deny, answered 503), `timeoutMs` (50:
 * past it the outage policy decides), `retryIntervalMs` (1000: after a failure, decisions skip
 * Redis this long, then try it again), `keySecret` (16 bytes: user keys are stored as their
 * keyed hash), `expiryGraceMs` (0), `outageRetryAfterMs` (1000), `maxKeys`, `onFull` (of the
 * fallback limiter).
 *
 * Every call is async and never rejects for Redis: `decision.reason` says which path decided
 * ('limit': Redis; 'fallback', 'failed_open', 'failed_closed': the outage policy).
 */
class RedisLimiter {
  #native;
  #out;
  #send;
  #params;
  #single;
  #limit;
  #names;
  #dimensions;
  #policy;
  #source;
  #timeoutMs;
  #retryIntervalMs;
  #downUntilMs = 0;
  #rates;
  #stats = { remote: 0, failedOpen: 0, failedClosed: 0, fallback: 0, errors: 0, skipped: 0, scriptLoads: 0 };

  constructor(limits, options) {
    const opts = validate.options(options, 'options');
    const { kind, send } = sender(opts.client);
    this.clientKind = kind;
    this.#send = send;
    let quotas;
    let refill = 'greedy';
    if (typeof limits === 'string') {
      const burst = opts.burst === undefined ? undefined : validate.integer(opts.burst, 'options.burst', 1, Number.MAX_SAFE_INTEGER);
      const algorithm = opts.algorithm === undefined ? 'gcra' : validate.oneOf(opts.algorithm, 'options.algorithm', ['gcra', 'token_bucket']);
      refill = opts.refill === undefined ? 'greedy' : validate.oneOf(opts.refill, 'options.refill', ['greedy', 'interval']);
      if (algorithm === 'gcra' && refill !== 'greedy') {
        throw argTypeError('options.refill', "'greedy' for algorithm 'gcra' (interval refill is a token bucket)", refill);
      }
      if (opts.name !== undefined && typeof opts.name !== 'string') throw argTypeError('options.name', 'a string', opts.name);
      quotas = [{ rate: limits, burst, name: opts.name, dimension: 0, argument: 'limits', nameArgument: opts.name === undefined ? 'limits' : 'options.name' }];
      this.#dimensions = ['requests'];
      this.#policy = false;
    } else if (Array.isArray(limits) && limits.length > 0) {
      const dimensions = [];
      quotas = limits.map((entry, index) => {
        const what = `limits[${index}]`;
        if (entry === null || typeof entry !== 'object') throw argTypeError(what, 'an object', entry);
        if (typeof entry.name !== 'string') throw argTypeError(`${what}.name`, 'a string', entry.name);
        if (typeof entry.rate !== 'string') throw argTypeError(`${what}.rate`, "a rate string such as '60/minute'", entry.rate);
        const burst = entry.burst === undefined ? undefined : validate.integer(entry.burst, `${what}.burst`, 1, Number.MAX_SAFE_INTEGER);
        const dimensionName = entry.dimension === undefined ? 'requests' : entry.dimension;
        if (typeof dimensionName !== 'string' || dimensionName === '') throw argTypeError(`${what}.dimension`, 'a non-empty string', dimensionName);
        let dimension = dimensions.indexOf(dimensionName);
        if (dimension < 0) dimension = dimensions.push(dimensionName) - 1;
        return { rate: entry.rate, burst, name: entry.name, dimension, argument: what, nameArgument: `${what}.name` };
      });
      this.#dimensions = dimensions;
      this.#policy = true;
    } else {
      throw argTypeError('limits', "a rate string such as '100/minute' or a non-empty array of { name, rate, burst?, dimension? }", limits);
    }
    const settings = { ...limiterOptions(opts, refill, 'limits'), blockMs: blockOption(opts) };
    if (opts.prefix !== undefined && typeof opts.prefix !== 'string') throw argTypeError('options.prefix', 'a string', opts.prefix);
    const outage = opts.outage === undefined ? 'fallback' : validate.oneOf(opts.outage, 'options.outage', OUTAGES);
    let keySecret;
    if (opts.keySecret !== undefined) {
      if (typeof opts.keySecret === 'string') keySecret = Buffer.from(opts.keySecret, 'utf8');
      else if (opts.keySecret instanceof Uint8Array) keySecret = Buffer.from(opts.keySecret);
      else throw argTypeError('options.keySecret', 'a Buffer (16 bytes)', opts.keySecret);
    }
    const remote = {
      prefix: opts.prefix,
      outage,
      keySecret,
      expiryGraceMs: nonNegative(opts.expiryGraceMs, 'options.expiryGraceMs', undefined),
      outageRetryAfterMs: nonNegative(opts.outageRetryAfterMs, 'options.outageRetryAfterMs', undefined),
    };
    this.#timeoutMs = validate.integer(opts.timeoutMs === undefined ? 50 : opts.timeoutMs, 'options.timeoutMs', 1, 2 ** 31 - 1);
    this.#retryIntervalMs = nonNegative(opts.retryIntervalMs, 'options.retryIntervalMs', 1000);
    this.#out = sharedArray();
    try {
      this.#native = new NativeRemoteLimiter(quotas, settings, remote, this.#out);
    } catch (error) {
      throw fromNative(error);
    }
    this.#params = this.#native.params();
    const limitsOf = this.#native.limits();
    this.#single = !this.#policy && limitsOf.length === 1;
    this.#limit = limitsOf[0];
    this.#names = this.#native.names();
    this.#rates = this.#native.rates();
    this.#source = { native: this.#native, out: this.#out };
  }

  /** The quota(s), written back as a rate string. */
  get rate() {
    return this.#rates.join('; ');
  }

  /** The outage policy: 'fallback', 'open' or 'closed'. */
  get outage() {
    return this.#native.outagePolicy;
  }

  /** The dimension names, in the order costs arrays use ('requests' for a rate string). */
  get dimensions() {
    return [...this.#dimensions];
  }

  /** The quota names, in order. */
  get names() {
    return [...this.#names];
  }

  /**
   * Tests and consumes `costs` for `key` in Redis, atomically (every quota or none). `costs`:
   * a number, `{ cost }` (as `Limiter`), an object per dimension or an array (as `Policy`);
   * default 1 with one dimension. `options.nowNs` (BigInt or integer): an explicit time
   * instead of Redis's clock (tests, replays).
   */
  check(key, costs, options) {
    return this.apply('check', key, costs, options);
  }

  /** The decision `check` would make, consuming nothing. */
  peek(key, costs, options) {
    return this.apply('peek', key, costs, options);
  }

  /** Consumes `costs` whether or not they fit, into debt. */
  force(key, costs, options) {
    return this.apply('force', key, costs, options);
  }

  /** Gives `costs` back, never above a full bucket. */
  refund(key, costs, options) {
    return this.apply('refund', key, costs, options);
  }

  /** Makes `key`'s buckets full; resolves with the decision of a peek of nothing. */
  reset(key, options) {
    return this.apply('reset', key, this.#dimensions.map(() => 0), options);
  }

  /** Runs operation `op` ('check', 'peek', 'force', 'refund', 'reset'); resolves with the decision. */
  async apply(op, key, costs, options) {
    if (!Object.prototype.hasOwnProperty.call(OPS, op)) throw outOfRange('op', `one of ${Object.keys(OPS).join(', ')}`, op);
    validate.key(key, 'key');
    const now = nowOption(options, 'options');
    this.#writeCosts(costs, 'costs');
    let bytes;
    try {
      bytes = this.#native.encode(key, OPS[op], now);
    } catch (error) {
      throw fromNative(error, 'key');
    }
    if (bytes === null) throw this.#missing(costs, 'costs');
    return (await this.#run(bytes, now)).decision;
  }

  /**
   * Reserves `estimate` (a check that, when admitted, returns a reservation to `settle`):
   * resolves with `{ decision, reservation }`, `reservation` null when refused.
   */
  async reserve(key, estimate, options) {
    validate.key(key, 'key');
    const now = nowOption(options, 'options');
    this.#writeCosts(estimate, 'estimate');
    let bytes;
    try {
      bytes = this.#native.encodeReserve(key, now);
    } catch (error) {
      throw fromNative(error, 'key');
    }
    if (bytes === null) throw this.#missing(estimate, 'estimate');
    const { decision, reservation } = await this.#run(bytes, now);
    return { decision, reservation: reservation ? new RedisReservation(this, reservation, estimate) : null };
  }

  /**
   * Settles a reservation with the `actual` costs (a dimension not named keeps its
   * estimate): refunds what was not used, charges what exceeds the estimate. Once.
   */
  async settle(reservation, actual, options) {
    if (!(reservation instanceof RedisReservation) || reservation.limiter !== this) {
      throw argTypeError('reservation', 'a reservation made by this limiter', reservation);
    }
    const now = nowOption(options, 'options');
    this.#writeCosts(actual, 'actual');
    let bytes;
    try {
      bytes = this.#native.settle(reservation.native, now);
    } catch (error) {
      throw fromNative(error, 'reservation');
    }
    if (bytes !== null) return (await this.#run(bytes, now)).decision;
    this.#count();
    return this.#decision();
  }

  /**
   * `{ remote, failedOpen, failedClosed, fallback, errors, skipped, scriptLoads }`: decisions
   * per path, failed calls to Redis (errors, timeouts, refused replies), decisions that
   * skipped Redis within `retryIntervalMs` of a failure, and full script sends (NOSCRIPT).
   */
  stats() {
    return { ...this.#stats };
  }

  /**
   * Sends the call just encoded (`bytes`: its key, then ARGV[2]), decodes the reply, or
   * applies the outage policy; counts the path. Returns `{ decision, reservation }`, the
   * decision read from the shared array at once: other calls in flight write it too.
   */
  async #run(bytes, now) {
    // Read before any await: the next call's encode writes these slots.
    const call = this.#out[CALL_ID];
    const keyLength = this.#out[CALL_KEY_LEN];
    let reservation;
    if (Date.now() < this.#downUntilMs) {
      this.#stats.skipped++;
      reservation = this.#native.outage(call, now);
    } else {
      let reply;
      try {
        reply = await this.#eval(bytes.subarray(0, keyLength), bytes.subarray(keyLength));
      } catch {
        reply = undefined;
      }
      let decoded = false;
      if (reply !== undefined) {
        try {
          reservation = this.#native.decode(call, reply);
          decoded = true;
        } catch {
          decoded = false;
        }
      }
      if (decoded) {
        this.#downUntilMs = 0;
      } else {
        this.#stats.errors++;
        this.#downUntilMs = Date.now() + this.#retryIntervalMs;
        reservation = this.#native.outage(call, now);
      }
    }
    this.#count();
    return { decision: this.#decision(), reservation };
  }

  /** EVALSHA, then EVAL on NOSCRIPT, both within one timeout. */
  #eval(key, argv) {
    const params = this.#params;
    let timedOut = false;
    const attempt = async () => {
      try {
        return await this.#send('EVALSHA', SCRIPT_SHA1, key, params, argv);
      } catch (error) {
        // Past the timeout the outage policy has decided: the call is not sent again.
        if (!isNoScript(error) || timedOut) throw error;
        this.#stats.scriptLoads++;
        return this.#send('EVAL', SCRIPT, key, params, argv);
      }
    };
    const timeoutMs = this.#timeoutMs;
    // One promise settled by whichever comes first, the reply or the timer (a reply after
    // the timeout is dropped).
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new TimeoutError(timeoutMs));
      }, timeoutMs);
      attempt().then((reply) => {
        clearTimeout(timer);
        resolve(reply);
      }, (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  #count() {
    const reason = REASONS[this.#out[REASON]];
    if (reason === 'failed_open') this.#stats.failedOpen++;
    else if (reason === 'failed_closed') this.#stats.failedClosed++;
    else if (reason === 'fallback') this.#stats.fallback++;
    else this.#stats.remote++;
  }

  #decision() {
    if (this.#single) return singleDecision(this.#out, this.#limit, this.#source);
    return severalDecision(this.#out, this.#source, this.#policy ? this.#names : undefined);
  }

  #missing(costs, name) {
    const dimension = this.#out[BINDING];
    const where = Array.isArray(costs) ? `${name}[${dimension}]` : `${name}.${this.#dimensions[dimension]}`;
    return argTypeError(where, `a cost (an integer from 0 to 2^53 - 1): a limiter of several dimensions needs one for each of ${this.#dimensions.join(', ')}`, undefined);
  }

  /** Validates `costs` completely, then writes them (COST_NOT_GIVEN where none is named). */
  #writeCosts(costs, name) {
    const count = this.#dimensions.length;
    const values = new Array(count).fill(COST_NOT_GIVEN);
    const given = (cost, where) => (cost === undefined ? COST_NOT_GIVEN : validate.cost(cost, where));
    if (costs === undefined) {
      // Nothing named: core completes the costs by its rule.
    } else if (typeof costs === 'number') {
      if (count !== 1) throw argTypeError(name, `an object or array (the limiter has ${count} dimensions)`, costs);
      values[0] = validate.cost(costs, name);
    } else if (Array.isArray(costs)) {
      if (costs.length !== count) throw outOfRange(`${name}.length`, `${count} (one cost per dimension)`, costs.length);
      for (let index = 0; index < count; index++) values[index] = given(costs[index], `${name}[${index}]`);
    } else if (costs !== null && typeof costs === 'object') {
      if (!this.#policy && Object.keys(costs).every((field) => field === 'cost')) {
        values[0] = given(costs.cost, `${name}.cost`);
      } else {
        for (const dimension of Object.keys(costs)) {
          const index = this.#dimensions.indexOf(dimension);
          if (index < 0) throw outOfRange(name, `keys among ${this.#dimensions.join(', ')}`, dimension);
          values[index] = given(costs[dimension], `${name}.${dimension}`);
        }
      }
    } else {
      throw argTypeError(name, 'a number, { cost }, an object of costs per dimension or an array', costs);
    }
    for (let index = 0; index < count; index++) this.#out[COSTS + index] = values[index];
  }
}

/** An admitted reservation of a RedisLimiter, to settle once with the actual costs. */
class RedisReservation {
  constructor(limiter, nativeReservation, estimate) {
    Object.defineProperty(this, 'limiter', { value: limiter });
    Object.defineProperty(this, 'native', { value: nativeReservation });
    this.estimate = estimate;
  }

  /** Whether it has not been settled yet. */
  get pending() {
    return this.native.pending;
  }

  /** Whether Redis holds its charge (not the outage policy). */
  get remote() {
    return this.native.remote;
  }

  /** `limiter.settle(this, actual, options)`. */
  settle(actual, options) {
    return this.limiter.settle(this, actual, options);
  }
}

module.exports = { RedisLimiter, RedisReservation, SCRIPT, SCRIPT_SHA1 };
