'use strict';
// The committed type definitions compile against a program that uses the whole API.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

test('index.d.ts, express.d.ts and fastify.d.ts type-check (tsc --strict)', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [
    tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--types', 'node', path.join(__dirname, 'types-check.ts'),
  ], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
});
