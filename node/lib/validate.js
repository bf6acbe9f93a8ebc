'use strict';
// Numbers from JavaScript, checked before they reach the addon: a NaN, an infinity, a
// fraction, a negative or a value above 2^53 - 1 is an error, never a silent zero (Node-API
// would turn NaN into 0, which would be a free request). Nanosecond times also take a bigint.

const { argTypeError, outOfRange } = require('./errors');

const MAX_U64 = (1n << 64n) - 1n;

/** A cost: an integer from 0 to 2^53 - 1. */
function cost(value, name) {
  if (typeof value !== 'number') throw argTypeError(name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < 0) throw outOfRange(name, 'an integer from 0 to 2^53 - 1', value);
  return value;
}

/** An integer from `min` to `max` (both safe integers). */
function integer(value, name, min, max) {
  if (typeof value !== 'number') throw argTypeError(name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw outOfRange(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** A time in nanoseconds: a safe integer number, or a bigint from 0 to 2^64 - 1. */
function ns(value, name) {
  if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_U64) throw outOfRange(name, 'a bigint from 0n to 2n ** 64n - 1n', value);
    return value;
  }
  if (typeof value !== 'number') throw argTypeError(name, 'a number or bigint', value);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw outOfRange(name, 'an integer from 0 to 2^53 - 1 (or a bigint)', value);
  }
  return BigInt(value);
}

/** A duration in milliseconds: an integer from 0 to 2^53 - 1, or Infinity when allowed. */
function ms(value, name, allowInfinity) {
  if (typeof value !== 'number') throw argTypeError(name, 'a number', value);
  if (allowInfinity && value === Infinity) return value;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw outOfRange(name, `an integer from 0 to 2^53 - 1${allowInfinity ? ' or Infinity' : ''}`, value);
  }
  return value;
}

/** An options argument: undefined (no options) or an object. */
function options(value, name) {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object') throw argTypeError(name, 'an object', value);
  return value;
}

/** A key: a string, Buffer or Uint8Array (its bytes are the key). */
function isKey(value) {
  return typeof value === 'string' || value instanceof Uint8Array;
}

function key(value, name) {
  if (!isKey(value)) throw argTypeError(name, 'a string, Buffer or Uint8Array', value);
  return value;
}

function oneOf(value, name, allowed) {
  if (!allowed.includes(value)) throw argTypeError(name, `one of ${allowed.map((v) => `'${v}'`).join(', ')}`, value);
  return value;
}

module.exports = { cost, integer, ns, ms, options, key, isKey, oneOf, MAX_U64 };
