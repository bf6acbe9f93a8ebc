'use strict';
// cellgate for Node: the public API over the native addon. Each file translates the core
// module it is named after (clock, limiter, policy, decision, headers, client_key; boundary
// is the addon and its shared array); arguments are checked for their types there (typed
// errors naming the argument), and core checks the values.

const { ManualClock } = require('./clock');
const { Decision } = require('./decision');
const { headers, limitedBody } = require('./headers');
const { Limiter } = require('./limiter');
const { Policy, Reservation } = require('./policy');
const { clientKey } = require('./client_key');
const { RateLimitError, SharedMemoryError } = require('./errors');
const { SharedMemory } = require('./shared_memory');

module.exports = {
  Limiter,
  Policy,
  Reservation,
  ManualClock,
  Decision,
  headers,
  limitedBody,
  clientKey,
  RateLimitError,
  SharedMemory,
  SharedMemoryError,
};
