'use strict';
// The private native addon, and the layout of the Float64Array each limiter shares with it
// (see node/src/boundary/shared.rs): the operation and the costs go in, the decision comes
// out. The numbers and names are checked against the addon's when it loads, so the two
// halves can never disagree silently.

const native = require('../native/cellgate.node');

const LAYOUT = Object.freeze({
  BINDING: 0,
  COUNT: 1,
  STATUS: 2,
  REASON: 3,
  OP: 4,
  SUMMARY: 5,
  ENTRIES: 10,
  ENTRY_SLOTS: 5,
  COSTS: 50,
  HEADER_SHAPE: 58,
  RENDER_STYLE: 59,
  RENDER_NOW_S: 60,
  LEN: 61,
  DENIED: 0,
  ALLOWED: 1,
  MISSING_COST: 3,
  COST_NOT_GIVEN: -1,
  NO_RENDER: -1,
});

/** Core's operations, by the number written into the OP slot. */
const OPS = Object.freeze({ check: 0, peek: 1, force: 2, refund: 3, reset: 4 });
/** Core's reasons (Reason::as_str), by the number written into the REASON slot. */
const REASONS = Object.freeze(['limit', 'table_full', 'untracked', 'failed_open', 'failed_closed', 'fallback']);

const actual = native.sharedLayout();
const expected = [
  LAYOUT.BINDING, LAYOUT.COUNT, LAYOUT.STATUS, LAYOUT.REASON, LAYOUT.OP, LAYOUT.SUMMARY,
  LAYOUT.ENTRIES, LAYOUT.ENTRY_SLOTS, LAYOUT.COSTS, LAYOUT.HEADER_SHAPE, LAYOUT.RENDER_STYLE, LAYOUT.RENDER_NOW_S,
  LAYOUT.LEN, LAYOUT.DENIED, LAYOUT.ALLOWED, LAYOUT.MISSING_COST, LAYOUT.COST_NOT_GIVEN, LAYOUT.NO_RENDER,
];
if (actual.length !== expected.length || actual.some((value, index) => value !== expected[index])) {
  throw new Error(`cellgate: the native addon's layout ${actual} differs from lib/boundary.js ${expected}`);
}
const names = native.sharedNames();
if (names.ops.join() !== Object.keys(OPS).join() || names.reasons.join() !== REASONS.join()) {
  throw new Error(`cellgate: the native addon's names ${JSON.stringify(names)} differ from lib/boundary.js`);
}

/**
 * A new shared array: the layout and 8 slots more (a RedisLimiter's call slots,
 * node/src/remote.rs), at least 64 (512 bytes), which keeps it off V8's heap from the start.
 * Its RENDER_STYLE slot starts as NO_RENDER (the native constructor writes it).
 */
function sharedArray() {
  return new Float64Array(Math.max(64, LAYOUT.LEN + 8));
}

module.exports = { native, LAYOUT, OPS, REASONS, sharedArray };
