import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const redis = require('./redis.js');

export const { RedisLimiter, RedisReservation, SCRIPT, SCRIPT_SHA1 } = redis;
export default redis.RedisLimiter;
