import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const express = require('./express.js');

export const { rateLimit } = express;
export default express.rateLimit;
