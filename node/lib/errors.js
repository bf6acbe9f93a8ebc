'use strict';
// Typed errors. Argument errors follow Node's own conventions: a value of the wrong type is a
// TypeError with code ERR_INVALID_ARG_TYPE; a number that is NaN, infinite, fractional,
// negative or too large is a RangeError with code ERR_OUT_OF_RANGE.

function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') return value.constructor && value.constructor.name ? `an instance of ${value.constructor.name}` : 'an object';
  return `${typeof value} ${String(value)}`;
}

function argTypeError(name, expected, value) {
  const error = new TypeError(`${name} must be ${expected}, got ${describe(value)}`);
  error.code = 'ERR_INVALID_ARG_TYPE';
  return error;
}

function outOfRange(name, expected, value) {
  const error = new RangeError(`${name} must be ${expected}, got ${describe(value)}`);
  error.code = 'ERR_OUT_OF_RANGE';
  return error;
}

/**
 * A native error (an invalid rate string, say) as the typed error it stands for; `name`, when
 * given, is the argument its message is about (the addon's messages mostly name it already).
 */
function fromNative(error, name) {
  const shared = /^(ERR_CELLGATE_SHARED_[A-Z_]+): ([^]*)$/.exec(error.message);
  if (shared) return new SharedMemoryError(shared[1], shared[2]);
  const message = name === undefined || error.message.startsWith(`${name}`) ? error.message : `${name}: ${error.message}`;
  const typed = error.code === 'ObjectExpected' ? new TypeError(message) : new RangeError(message);
  typed.code = error.code === 'ObjectExpected' ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE';
  return typed;
}

/**
 * `acquire` gave up: `reason` is 'timeout' (the wait would pass `timeoutMs`), 'never' (the
 * cost exceeds the burst, so no wait helps) or 'aborted' (the signal fired; `cause` is its
 * reason). `decision` is the last decision seen.
 */
class RateLimitError extends Error {
  constructor(reason, decision, options) {
    const messages = {
      timeout: `rate limited: the wait (${decision ? decision.retryAfterMs : '?'} ms) would pass the timeout`,
      never: 'rate limited: the cost exceeds the burst and can never be admitted',
      aborted: 'rate limited: the wait was aborted',
    };
    super(messages[reason] || 'rate limited', options);
    this.name = reason === 'aborted' ? 'AbortError' : 'RateLimitError';
    this.code = `ERR_CELLGATE_${reason.toUpperCase()}`;
    this.reason = reason;
    this.decision = decision;
  }
}

/**
 * A shared-memory table could not be opened or removed. `code` says why:
 * ERR_CELLGATE_SHARED_CONFIG_MISMATCH (the file holds another configuration: the message names
 * the field), _BAD_FILE (not a table, truncated, damaged, not a regular file), _VERSION (another
 * layout version), _PERMISSION (another owner, too-open mode, access denied), _UNSUPPORTED (no
 * lock-free 128-bit atomics, or not Unix), _IO (another failed system call). The message
 * starts with the path.
 */
class SharedMemoryError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SharedMemoryError';
    this.code = code;
  }
}

module.exports = { argTypeError, outOfRange, fromNative, describe, RateLimitError, SharedMemoryError };
