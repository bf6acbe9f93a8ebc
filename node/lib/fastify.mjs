import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const plugin = require('./fastify.js');

export const cellgate = plugin;
export default plugin;
