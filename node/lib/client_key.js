'use strict';
// Client keys: an IP address to a limiter key, by core's rule (node/src/client_key.rs).

const { native } = require('./boundary');
const { argTypeError, fromNative } = require('./errors');
const validate = require('./validate');

// The native call writes a key here; each key is copied out of it into a Buffer of its own
// (cheaper than a Buffer made in Rust: node/src/client_key.rs).
const scratch = new Uint8Array(native.clientKeyMaxLen());

/**
 * The key for a client's IP address, as a server reports it: one key per IPv4 address and
 * per IPv6 prefix of `ipv6PrefixLen` bits (default 56, as express-rate-limit), the same for
 * every spelling (`[2001:db8::1]:443`, `::ffff:192.0.2.1`, zone ids). Returns a Buffer.
 * Throws a RangeError for text that is not an address.
 */
function clientKey(address, options) {
  if (typeof address !== 'string') throw argTypeError('address', 'a string', address);
  const opts = validate.options(options, 'options');
  const prefix = opts.ipv6PrefixLen === undefined ? 56 : validate.integer(opts.ipv6PrefixLen, 'options.ipv6PrefixLen', 1, 128);
  try {
    const length = native.clientKeyInto(address, prefix, scratch);
    const key = Buffer.allocUnsafe(length);
    for (let index = 0; index < length; index++) key[index] = scratch[index];
    return key;
  } catch (error) {
    throw fromNative(error, 'address');
  }
}

module.exports = { clientKey };
