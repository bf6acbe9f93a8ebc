'use strict';
// Headers and the 429 body of a decision, rendered by the Rust core (node/src/headers.rs):
// the same bytes as every other cellgate runtime.

const { native } = require('./boundary');
const { argTypeError, fromNative } = require('./errors');
const { Decision } = require('./decision');
const validate = require('./validate');

/** The styles `headers` renders (core's, by index), and those that show the wall clock. */
const STYLES = Object.freeze(native.headerStyles());
const WALL_CLOCK_STYLES = new Set(native.wallClockStyles());

/**
 * The HTTP headers for a decision, rendered by the Rust core: with `style` 'ietf' (the
 * default) `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10), with
 * 'legacy' `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds from
 * now), with 'legacy-epoch' the reset as a Unix time; plus `Retry-After` (whole seconds,
 * rounded up) on a denial. The per-dimension styles of LLM APIs: 'anthropic'
 * (`anthropic-ratelimit-{name}-limit`, `-remaining`, `-reset` as an RFC 3339 time) and
 * 'openai' (`x-ratelimit-limit-{name}`, `x-ratelimit-remaining-{name}`,
 * `x-ratelimit-reset-{name}` as `6m0s`), with `retry-after` on a denial. `nowUnixS` (default:
 * `Date.now()`) is the wall clock of 'legacy-epoch' and 'anthropic'.
 *
 * @returns {Record<string, string>}
 */
function headers(decision, options) {
  if (!Decision.isDecision(decision)) throw argTypeError('decision', 'a decision returned by a cellgate limiter', decision);
  const opts = validate.options(options, 'options');
  const style = opts.style === undefined ? 'ietf' : opts.style;
  const index = STYLES.indexOf(style);
  if (index < 0) throw argTypeError('options.style', STYLES.map((name) => `'${name}'`).join(', '), style);
  checkDecisionFields(decision);
  let nowUnixS = 0;
  if (WALL_CLOCK_STYLES.has(style)) {
    nowUnixS = opts.nowUnixS === undefined ? Math.floor(Date.now() / 1000) : validate.integer(opts.nowUnixS, 'options.nowUnixS', 0, Number.MAX_SAFE_INTEGER);
  }
  try {
    return Decision.headers(decision, index, nowUnixS);
  } catch (error) {
    throw fromNative(error);
  }
}

/**
 * The public fields `headers` reads back from a decision (it is a plain object: they can be
 * assigned), checked as any argument is: a TypeError or RangeError naming the field.
 */
function checkDecisionFields(decision) {
  if (typeof decision.allowed !== 'boolean') throw argTypeError('decision.allowed', 'a boolean', decision.allowed);
  validate.integer(decision.limit, 'decision.limit', 0, Number.MAX_SAFE_INTEGER);
  validate.integer(decision.remaining, 'decision.remaining', 0, Number.MAX_SAFE_INTEGER);
}

/**
 * The JSON body of a 429 response for a decision, rendered by the core:
 * `{"error":"rate_limited","retry_after":N}` (N as in `Retry-After`, or null for never).
 */
function limitedBody(decision) {
  if (!Decision.isDecision(decision)) throw argTypeError('decision', 'a decision returned by a cellgate limiter', decision);
  checkDecisionFields(decision);
  try {
    return Decision.renderBody(decision);
  } catch (error) {
    throw fromNative(error);
  }
}

module.exports = { headers, limitedBody, STYLES, WALL_CLOCK_STYLES };
