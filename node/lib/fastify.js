'use strict';
// cellgate/fastify: a Fastify (4 and 5) plugin.
//
//   const { Limiter } = require('cellgate');
//   await app.register(require('cellgate/fastify'), { limiter: new Limiter('100/minute') });

const { argTypeError } = require('./errors');
const {
  settings, routeOptions, evaluate, evaluateNow, exceeded, settle, sentHeaders, bodyFor, statusFor,
  MISCONFIGURED, MISCONFIGURED_BODY, STATUS_OF_AN_ERROR,
} = require('./middleware');

/** The hooks the limiter may run in: onRequest (the default) or later, after authentication. */
const HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler'];

/** Fastify's own register options (it hands them to the plugin too), and the hook. */
const FRAMEWORK_OPTIONS = ['prefix', 'logLevel', 'logSerializers', 'hook'];

const kState = Symbol('cellgate.request');

/** A route's config (Fastify 4.10+ and 5: request.routeOptions.config). */
function routeConfig(request) {
  const options = request.routeOptions;
  return options === undefined ? undefined : options.config;
}

/**
 * Checks every request (a hook, `options.hook`: 'onRequest' by default, or 'preParsing',
 * 'preValidation', 'preHandler' so that the key can come after authentication, on the
 * instance it is registered on and the routes registered after it) against `options.limiter`.
 * Options as for `cellgate/express`, with `key(request, reply)` defaulting to `request.ip`
 * and `onLimited(request, reply, decision)` answering a denial instead of the JSON (awaited;
 * if it sends nothing, or throws, the default answer is sent: a denial never reaches the
 * handler). A route's `config: { rateLimit: { ...options } }` overrides and extends the
 * options for that route (checked when the route is registered), `config: { rateLimit:
 * false }` exempts it. Sets `request.rateLimit`; answers a denial with the status, the
 * headers and `{"error":"rate_limited","retry_after":N}`; the count modes refund in an
 * onResponse hook.
 */
function cellgatePlugin(fastify, options, done) {
  let config;
  let hook;
  const shared = { warned: false };
  try {
    config = settings(options, clientAddress, FRAMEWORK_OPTIONS, 'options', shared);
    hook = options.hook === undefined ? 'onRequest' : options.hook;
    if (!HOOKS.includes(hook)) throw argTypeError('options.hook', HOOKS.map((name) => `'${name}'`).join(', '), hook);
  } catch (error) {
    done(error);
    return;
  }
  config.framework = 'cellgate/fastify';
  // One compiled configuration per route config object (false: the route is exempt).
  const routes = new WeakMap();
  const compile = (rateLimit) => {
    if (rateLimit === false) return false;
    if (rateLimit === null || typeof rateLimit !== 'object') throw argTypeError('config.rateLimit', 'an object of options or false', rateLimit);
    if (Object.prototype.hasOwnProperty.call(rateLimit, 'hook')) {
      throw new TypeError('config.rateLimit.hook: the hook is chosen once, at registration (options.hook)');
    }
    const route = settings(routeOptions(config, rateLimit, FRAMEWORK_OPTIONS), clientAddress, [], 'config.rateLimit', shared);
    route.framework = config.framework;
    return route;
  };
  const configFor = (request) => {
    const routeOptions = routeConfig(request);
    if (routeOptions === undefined || routeOptions === null || routeOptions.rateLimit === undefined) return config;
    let compiled = routes.get(routeOptions);
    if (compiled === undefined) {
      compiled = compile(routeOptions.rateLimit);
      routes.set(routeOptions, compiled);
    }
    return compiled;
  };
  // A route's options are checked when it is registered: a typo fails at startup. A route
  // that counts by status (`count`, `countWhen`) when the plugin's options do not gets the
  // settling hooks of its own, so that no other request pays for them.
  fastify.addHook('onRoute', (route) => {
    if (!route.config || route.config.rateLimit === undefined) return;
    const compiled = compile(route.config.rateLimit);
    if (config.counts === undefined && compiled !== false && compiled.counts !== undefined) {
      route.onResponse = withHook(route.onResponse, settleOnResponse);
      route.onRequestAbort = withHook(route.onRequestAbort, settleOnAbort);
    }
  });
  // Registered more than once (one limiter per route prefix, say), it decorates only once.
  if (!fastify.hasRequestDecorator('rateLimit')) fastify.decorateRequest('rateLimit', null);
  // Callback-style hooks: a request whose decision is synchronous (an in-process or
  // host-wide limiter, a sync key) costs no promise; `next(error)` continues the lifecycle
  // (or fails it), and is not called once a reply was sent (Fastify's "respond from a hook").
  const limit = (request, reply, next) => {
    let called = false;
    const once = (error) => {
      if (called) return;
      called = true;
      next(error);
    };
    let current;
    try {
      current = configFor(request);
    } catch (error) {
      return once(error);
    }
    if (current === false) return once();
    if (current.direct) {
      // Every step synchronous (see evaluateNow): decided here, with the headers rendered in
      // the same native call (in lower case: reply.headers would lower each name), answered
      // at once.
      try {
        respond(current, request, reply, evaluateNow(current, request, reply, true), once);
      } catch (error) {
        once(error);
      }
      return undefined;
    }
    let decided = false;
    const onResult = (result) => {
      if (decided) return;
      decided = true;
      try {
        respond(current, request, reply, result, once);
      } catch (error) {
        once(error);
      }
    };
    try {
      const pending = evaluate(current, request, reply, onResult);
      if (pending !== undefined) pending.then(undefined, (error) => { if (!decided) { decided = true; once(error); } });
    } catch (error) {
      if (!decided) {
        decided = true;
        once(error);
      }
    }
  };
  // Answers `result` (evaluate's): continues with `next()` when admitted or not limited,
  // sends the 500 or the denial otherwise.
  const respond = (current, request, reply, result, next) => {
    if (result === null) return next();
    if (result === MISCONFIGURED) {
      reply.code(500).type('application/json; charset=utf-8').send(MISCONFIGURED_BODY);
      return undefined;
    }
    const { decision } = result;
    request.rateLimit = decision;
    const sent = sentHeaders(current, result);
    reply.headers(sent);
    if (decision.allowed) {
      if (current.counts !== undefined) {
        const states = request[kState] || (request[kState] = []);
        states.push({ config: current, checked: result, settled: false });
      }
      return next();
    }
    exceeded(current, request, decision, (error) => request.log.error({ err: error }, 'cellgate/fastify: onExceeded failed (the denial was answered all the same)'));
    const deny = () => reply.headers(sent).code(statusFor(current, decision)).type('application/json; charset=utf-8').send(bodyFor(decision));
    if (current.onLimited === undefined) {
      deny();
      return undefined;
    }
    onLimited(current, request, reply, decision)
      .then((answered) => {
        if (!answered) deny();
      })
      .catch(next);
    return undefined;
  };
  if (hook === 'preParsing') {
    // A preParsing hook continues with the payload stream (passed on unchanged).
    fastify.addHook('preParsing', (request, reply, payload, done) => limit(request, reply, (error) => (error ? done(error) : done(null, payload))));
  } else {
    fastify.addHook(hook, (request, reply, done) => limit(request, reply, done));
  }
  // The count modes: once the status is known (a request aborted by the client counts as 500).
  function settleOnResponse(request, reply, next) {
    settleAll(request, reply, reply.statusCode);
    next();
  }
  function settleOnAbort(request, next) {
    settleAll(request, undefined, STATUS_OF_AN_ERROR);
    next();
  }
  const settleAll = (request, reply, status) => {
    const states = request[kState];
    if (states === undefined) return;
    for (const state of states) {
      if (state.settled) continue;
      state.settled = true;
      settle(state.config, state.checked, status, request, reply, (error, what) => request.log.error({ err: error }, `cellgate/fastify: ${what}`));
    }
  };
  // Registered for every route only when the plugin's own options count by status (a hook
  // costs each request about a microsecond, measured with `make bench-middleware`); the
  // routes that count by their own options got theirs in onRoute above.
  if (config.counts !== undefined) {
    fastify.addHook('onResponse', settleOnResponse);
    try {
      fastify.addHook('onRequestAbort', settleOnAbort);
    } catch {
      // Fastify before 4.14 has no onRequestAbort: an aborted request keeps its cost.
    }
  }
  done();
}

/** A route's hook option (`undefined`, a function or an array of them) with `hook` added. */
function withHook(existing, hook) {
  if (existing === undefined) return hook;
  return Array.isArray(existing) ? [...existing, hook] : [existing, hook];
}

function clientAddress(request) {
  return request.ip || '';
}

/**
 * Runs `onLimited` (awaited, so an async one may answer after a wait) and says whether it
 * answered: called `reply.send` (its own, or through `code().send()`, `redirect()`...), or
 * hijacked the reply. `reply.sent` alone would miss a send still passing through async
 * `onSend` hooks, and sending again then would fail. When it did not answer, or threw, the
 * caller sends the default answer: a denial never reaches the handler. A thrown error is
 * logged with the request's logger.
 */
async function onLimited(config, request, reply, decision) {
  let sendCalled = false;
  const ownSend = Object.prototype.hasOwnProperty.call(reply, 'send') ? reply.send : undefined;
  const send = reply.send;
  reply.send = function sendFromOnLimited(...args) {
    sendCalled = true;
    return send.apply(this, args);
  };
  try {
    await config.onLimited(request, reply, decision);
  } catch (error) {
    const answered = sendCalled || reply.sent;
    request.log.error({ err: error }, `cellgate/fastify: onLimited failed (${answered ? 'after it answered' : `the default ${config.statusCode} answer was sent`})`);
  } finally {
    if (ownSend === undefined) delete reply.send;
    else reply.send = ownSend;
  }
  return sendCalled || reply.sent;
}

// Apply to the instance it is registered on (as fastify-plugin would), not to a child
// context only; and give the plugin a name in Fastify's plugin tree.
cellgatePlugin[Symbol.for('skip-override')] = true;
cellgatePlugin[Symbol.for('fastify.display-name')] = 'cellgate';
cellgatePlugin[Symbol.for('plugin-meta')] = { name: 'cellgate', fastify: '>=4' };

module.exports = cellgatePlugin;
module.exports.default = cellgatePlugin;
module.exports.cellgate = cellgatePlugin;
