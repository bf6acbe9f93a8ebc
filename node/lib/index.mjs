// ESM entry point: the same objects as the CommonJS entry (one copy of the addon).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const cellgate = require('./index.js');

export const {
  Limiter, Policy, Reservation, ManualClock, Decision, headers, limitedBody, clientKey, RateLimitError,
  SharedMemory, SharedMemoryError,
} = cellgate;
export default cellgate;
