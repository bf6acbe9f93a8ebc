'use strict';
// Decisions: plain JavaScript objects built from the numbers the addon writes into the shared
// array (core's LimiterDecision, including its `decision()` summary: nothing is recomputed
// here), and written back there when headers or a 429 body are rendered.

const { LAYOUT, REASONS } = require('./boundary');
const { parseHeaders, shapeBuilder } = require('./header_shapes');

const { ENTRIES, ENTRY_SLOTS, SUMMARY, BINDING, COUNT, STATUS, REASON, ALLOWED, HEADER_SHAPE, RENDER_STYLE, RENDER_NOW_S, NO_RENDER } = LAYOUT;
const NS_PER_MS = 1e6;

/**
 * The package's own method of Limiter and Policy behind the middleware: `check(key)` (the
 * default cost) and the decision's headers in one native call. A symbol: not public API.
 */
const kCheckWithHeaders = Symbol('cellgate.checkWithHeaders');

/**
 * What a limiter answered: `{ allowed, reason, limit, remaining, retryAfterMs, resetAfterMs }`,
 * the same fields on allow and deny. `reason` is 'limit' (the buckets decided), 'table_full'
 * (a new key found no room: denied, with a wait) or 'untracked' (no room, admitted untracked
 * under `onFull: 'allowUntracked'`). `retryAfterMs` is 0 when allowed and `Infinity` when the
 * cost can never be admitted. Private fields keep the exact nanoseconds for `headers`.
 */
class Decision {
  #retryAfterNs;
  #resetAfterNs;
  #source;
  #entries;

  constructor(allowed, reason, limit, remaining, retryAfterNs, resetAfterNs, source, entries) {
    this.allowed = allowed;
    this.reason = reason;
    this.limit = limit;
    this.remaining = remaining;
    this.retryAfterMs = retryAfterNs / NS_PER_MS;
    this.resetAfterMs = resetAfterNs / NS_PER_MS;
    this.#retryAfterNs = retryAfterNs;
    this.#resetAfterNs = resetAfterNs;
    this.#source = source;
    this.#entries = entries;
  }

  static isDecision(value) {
    return value !== null && typeof value === 'object' && #source in value;
  }

  /**
   * The decision's headers in the style at `styleIndex`, rendered by core, as an object. A
   * source with a header function (`render`, with its `shapes`) returns the values of a known
   * shape (see header_shapes.js); any other renders `name\nvalue\n...` through its native.
   */
  static headers(decision, styleIndex, nowUnixS) {
    const source = decision.#source;
    const count = Decision.#writeBack(decision);
    if (source.render === undefined) return parseHeaders(source.native.renderHeaders(styleIndex, nowUnixS, count));
    const values = source.render(styleIndex, nowUnixS, count);
    return shapedHeaders(source, values, styleIndex, nowUnixS, count, false);
  }

  /** The 429 body of the decision, rendered by core. */
  static renderBody(decision) {
    const count = Decision.#writeBack(decision);
    return decision.#source.native.render429Body(count);
  }

  /** Writes the decision back into its source's shared array; returns its entry count. */
  static #writeBack(decision) {
    const out = decision.#source.out;
    if (decision.#entries === undefined) {
      out[ENTRIES] = decision.allowed ? 1 : 0;
      out[ENTRIES + 1] = decision.limit;
      out[ENTRIES + 2] = decision.remaining;
      out[ENTRIES + 3] = decision.#retryAfterNs;
      out[ENTRIES + 4] = decision.#resetAfterNs;
      return 1;
    }
    const entries = decision.#entries;
    for (let index = 0; index < entries.length; index++) out[ENTRIES + index] = entries[index];
    return entries.length / ENTRY_SLOTS;
  }
}

/**
 * The headers object of a rendering whose `values` the addon returned (the header function,
 * or a fast call asked to render) with its shape in the shared array's HEADER_SHAPE slot, the
 * decision (`count` entries) still in the array. `lowercase`: the names in lower case (what
 * Fastify's `reply.headers` would make of them, for one `toLowerCase` per header less).
 */
function shapedHeaders(source, values, styleIndex, nowUnixS, count, lowercase) {
  const shape = source.out[HEADER_SHAPE];
  if (shape < 0) {
    // No shape: more distinct header lists than the addon keeps (MAX_HEADER_SHAPES).
    const all = parseHeaders(source.native.renderHeaders(styleIndex, nowUnixS, count));
    return lowercase ? lowerCased(all) : all;
  }
  const builders = lowercase ? source.lowerShapes : source.shapes;
  let build = builders[shape];
  if (build === undefined) {
    const names = source.native.headerShape(shape);
    build = shapeBuilder(lowercase ? names.toLowerCase() : names);
    builders[shape] = build;
  }
  return build(values);
}

/** `headers` with every name in lower case. */
function lowerCased(headers) {
  const lower = {};
  for (const name of Object.keys(headers)) lower[name.toLowerCase()] = headers[name];
  return lower;
}

/**
 * Runs `apply(key)` (a limiter's fast function, its operation and costs written) asking it to
 * render the decision's headers in the style at `styleIndex` too; returns the values it
 * returned. A call that throws (a key it refused before taking the request) leaves no
 * request behind.
 */
function applyRendering(apply, out, key, styleIndex, nowUnixS) {
  out[RENDER_STYLE] = styleIndex;
  out[RENDER_NOW_S] = nowUnixS;
  try {
    return apply(key);
  } catch (error) {
    out[RENDER_STYLE] = NO_RENDER;
    throw error;
  }
}

/**
 * The `{ native, out, render, shapes, lowerShapes }` a limiter's decisions render through:
 * its native half, its shared array, its header function, and the constructors of the
 * shapes it has rendered (header_shapes.js), kept per limiter.
 */
function headerSource(nativeLimiter, out) {
  return { native: nativeLimiter, out, render: nativeLimiter.headerFunction(), shapes: [], lowerShapes: [] };
}

/** The decision of a limiter with one quota, from the shared array: the summary's numbers. */
function singleDecision(out, limit, source) {
  return new Decision(out[STATUS] === ALLOWED, REASONS[out[REASON]], limit, out[SUMMARY + 2], out[SUMMARY + 3], out[SUMMARY + 4], source, undefined);
}

/**
 * A decision of several quotas from the shared array: core's summary (the binding quota's
 * numbers, with the limiter's `allowed` and no wait when allowed). With `names`, a policy
 * decision that also carries `binding` (a name) and every entry's decision.
 */
function severalDecision(out, source, names) {
  const count = out[COUNT];
  const entries = new Array(ENTRY_SLOTS * count);
  for (let index = 0; index < entries.length; index++) entries[index] = out[ENTRIES + index];
  const decision = new Decision(out[STATUS] === ALLOWED, REASONS[out[REASON]], out[SUMMARY + 1], out[SUMMARY + 2], out[SUMMARY + 3], out[SUMMARY + 4], source, entries);
  if (names !== undefined) {
    decision.binding = names[out[BINDING]];
    const decisions = [];
    for (let index = 0; index < count; index++) {
      const at = ENTRY_SLOTS * index;
      decisions.push({
        name: names[index],
        allowed: entries[at] === 1,
        limit: entries[at + 1],
        remaining: entries[at + 2],
        retryAfterMs: entries[at + 3] / NS_PER_MS,
        resetAfterMs: entries[at + 4] / NS_PER_MS,
      });
    }
    decision.decisions = decisions;
  }
  return decision;
}

module.exports = {
  Decision, singleDecision, severalDecision, shapedHeaders, headerSource, applyRendering, kCheckWithHeaders,
};
