'use strict';
// The READMEs' Express example is test/readme-express.ts, word for word, and it type-checks
// with tsc --strict against the installed package and @types/express: an example that keys
// by a client-chosen header, or that does not compile, cannot come back unnoticed.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const EXAMPLE_PATH = path.join(__dirname, 'readme-express.ts');
const EXAMPLE = fs.readFileSync(EXAMPLE_PATH, 'utf8');

/** The ```ts blocks of a Markdown file. */
function tsBlocks(markdown) {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
}

test('the repository README (From Node.js) shows readme-express.ts as it is', () => {
  // make test-node names it (the tests run from a copy outside the repository).
  const readme = process.env.CELLGATE_README || path.join(__dirname, '..', '..', 'README.md');
  assert.ok(fs.existsSync(readme), `the repository README is at ${readme} (set CELLGATE_README)`);
  const text = fs.readFileSync(readme, 'utf8');
  const section = text.slice(text.indexOf('## From Node.js'), text.indexOf('\n## ', text.indexOf('## From Node.js') + 1));
  assert.ok(tsBlocks(section).includes(EXAMPLE), 'the From Node.js section holds the example verbatim');
});

test("the package's README (Express) shows readme-express.ts as it is", () => {
  const readme = path.join(path.dirname(require.resolve('cellgate/package.json')), 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const section = text.slice(text.indexOf('## Express'), text.indexOf('\n## ', text.indexOf('## Express') + 1));
  assert.ok(tsBlocks(section).includes(EXAMPLE), 'the Express section holds the example verbatim');
  assert.doesNotMatch(text, /req\.get\('x-api-key'\)/, 'no example keys by a client-chosen header');
});

test('the README example type-checks (tsc --strict, with @types/express)', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [
    tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--types', 'node', EXAMPLE_PATH,
  ], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
});
