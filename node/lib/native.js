'use strict';
// The private native addon, and the layout of the Float64Array each limiter shares with it
// (see node/src/shared.rs). The numbers are checked against the addon's when it loads, so
// the two halves can never disagree silently.

const native = require('../native/cellgate.node');

const LAYOUT = Object.freeze({
  BINDING: 0,
  COUNT: 1,
  STATUS: 2,
  ENTRIES: 3,
  ENTRY_SLOTS: 5,
  COSTS: 43,
  LEN: 51,
  DENIED: 0,
  ALLOWED: 1,
  TABLE_FULL: 2,
  MISSING_COST: 3,
  COST_NOT_GIVEN: -1,
});

const actual = native.sharedLayout();
const expected = [
  LAYOUT.BINDING, LAYOUT.COUNT, LAYOUT.STATUS, LAYOUT.ENTRIES, LAYOUT.ENTRY_SLOTS,
  LAYOUT.COSTS, LAYOUT.LEN, LAYOUT.DENIED, LAYOUT.ALLOWED, LAYOUT.TABLE_FULL,
  LAYOUT.MISSING_COST, LAYOUT.COST_NOT_GIVEN,
];
if (actual.length !== expected.length || actual.some((value, index) => value !== expected[index])) {
  throw new Error(`cellgate: the native addon's layout ${actual} differs from lib/native.js ${expected}`);
}

/** A new shared array. 64 slots (512 bytes) keep it off V8's heap from the start. */
function sharedArray() {
  return new Float64Array(Math.max(64, LAYOUT.LEN));
}

module.exports = { native, LAYOUT, sharedArray };
