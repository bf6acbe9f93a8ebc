'use strict';
// cellgate/fastify: a Fastify (4 and 5) plugin.
//
//   const { Limiter } = require('cellgate');
//   await app.register(require('cellgate/fastify'), { limiter: new Limiter('100/minute') });

const { settings, evaluate, headersFor, bodyFor, statusFor } = require('./middleware');

/**
 * Checks every request (an `onRequest` hook on the instance it is registered on, and on the
 * routes registered after it) against `options.limiter`. Options as for `cellgate/express`,
 * with `key(request, reply)` defaulting to `request.ip` and `onLimited(request, reply,
 * decision)` answering a denial instead of the JSON (awaited; if it sends nothing, or throws,
 * the default answer is sent: a denial never reaches the handler). Sets `request.rateLimit`;
 * answers a denial with the status, the headers and `{"error":"rate_limited","retry_after":N}`.
 */
function cellgatePlugin(fastify, options, done) {
  let config;
  try {
    // Fastify hands the plugin its register options too.
    config = settings(options, (request) => request.ip || '', ['prefix', 'logLevel', 'logSerializers']);
  } catch (error) {
    done(error);
    return;
  }
  // Registered more than once (one limiter per route prefix, say), it decorates only once.
  if (!fastify.hasRequestDecorator('rateLimit')) fastify.decorateRequest('rateLimit', null);
  fastify.addHook('onRequest', async (request, reply) => {
    if (config.skip !== undefined && (await config.skip(request, reply))) return undefined;
    const decision = await new Promise((resolve, reject) => {
      try {
        const pending = evaluate(config, request, reply, resolve);
        if (pending !== undefined) pending.catch(reject);
      } catch (error) {
        reject(error);
      }
    });
    request.rateLimit = decision;
    reply.headers(headersFor(config, decision));
    if (decision.allowed) return undefined;
    if (config.onLimited !== undefined && (await onLimited(config, request, reply, decision))) return reply;
    reply.headers(headersFor(config, decision)).code(statusFor(config, decision)).type('application/json; charset=utf-8').send(bodyFor(decision));
    return reply;
  });
  done();
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
