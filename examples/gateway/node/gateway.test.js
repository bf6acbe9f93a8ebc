'use strict';
// End-to-end tests of gateway.js (node --test): the fake model (../fake_model.py, run with
// $PYTHON or python3) and the gateway run as processes on free loopback ports (stopped in
// after/finally, however a test ends), driven over HTTP with fetch and node:http.
//
// The gateway runs with --frozen-clock: no quota refills between requests, so every remaining
// count in the headers is exact. Each test uses its own API key (its own buckets).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const { parseItem } = require('structured-headers');

const FAKE_MODEL = path.join(__dirname, '..', 'fake_model.py');
const GATEWAY = path.join(__dirname, 'gateway.js');
const PYTHON = process.env.PYTHON || 'python3';
const DIMENSIONS = ['requests', 'input_tokens', 'output_tokens'];
const LIMITS = { requests: 60, input_tokens: 100_000, output_tokens: 20_000 };

/** Starts a server that prints `... listening on URL` first; resolves to { child, url }. */
async function start(command, args, timeoutMs = 20_000) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  let timer;
  try {
    const line = await Promise.race([
      once(lines, 'line').then(([first]) => first),
      once(child, 'exit').then(([code]) => { throw new Error(`${args[0]} exited with ${code}`); }),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${args[0]} did not start`)), timeoutMs); }),
    ]);
    const match = /listening on (http:\/\/127\.0\.0\.1:[0-9]+)$/.exec(line.trim());
    if (match === null) throw new Error(`${args[0]} did not start: ${line}`);
    lines.on('line', () => {}); // keep draining its output
    return { child, url: match[1] };
  } catch (error) {
    await stop(child);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** The fake model and a gateway in front of it: { url, close() }. */
async function servers(...gatewayArgs) {
  const children = [];
  const close = async () => {
    for (const child of children.reverse()) await stop(child);
  };
  try {
    const model = await start(PYTHON, [FAKE_MODEL, '--port', '0']);
    children.push(model.child);
    const gateway = await start(process.execPath, [GATEWAY, '--port', '0', '--upstream', model.url, '--frozen-clock', ...gatewayArgs]);
    children.push(gateway.child);
    return { url: gateway.url, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function request(model, maxTokens, content = 'hi', extra = {}) {
  return { model, max_tokens: maxTokens, messages: [{ role: 'user', content }], stream: false, ...extra };
}

async function post(url, key, body) {
  const response = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'x-api-key': key }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

// Strict parsers of the header values.

/** An RFC 9651 Integer (digits only, no fraction, no parameters), parsed by structured-headers. */
function sfInteger(value) {
  assert.match(value, /^[0-9]+$/);
  const [item, params] = parseItem(value);
  assert.ok(Number.isSafeInteger(item) && item >= 0 && params.size === 0, value);
  return item;
}

/** Retry-After as RFC 9110 delay-seconds: 1*DIGIT. */
function delaySeconds(value) {
  assert.match(value, /^[0-9]+$/);
  return Number(value);
}

/** An RFC 3339 UTC time (2026-12-03T08:06:40Z), as seconds from now. */
function rfc3339UtcS(value) {
  assert.match(value, /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/);
  const at = Date.parse(value);
  assert.ok(Number.isFinite(at), value);
  return (at - Date.now()) / 1000;
}

/** An OpenAI-style duration: 20ms, 59s, 6m0s, 1h0m0s. */
function durationS(value) {
  const match = /^(?:([0-9]+)ms|(?:([0-9]+)h)?(?:([0-9]+)m)?([0-9]+)s)$/.exec(value);
  assert.ok(match, value);
  if (match[1] !== undefined) return Number(match[1]) / 1000;
  const [hours, minutes, seconds] = match.slice(2).map((group) => Number(group ?? 0));
  return hours * 3600 + minutes * 60 + seconds;
}

/**
 * Every dimension's limit, remaining and reset (seconds from now), parsed strictly; each of the
 * nine headers must be there once (fetch joins repeated headers with ", ", which fails parsing).
 */
function rateLimits(response, style = 'anthropic') {
  const result = {};
  for (const dimension of DIMENSIONS) {
    const name = dimension.replaceAll('_', '-');
    const fields = {};
    for (const field of ['limit', 'remaining', 'reset']) {
      const header = style === 'anthropic' ? `anthropic-ratelimit-${name}-${field}` : `x-ratelimit-${field}-${name}`;
      const value = response.headers.get(header);
      assert.notEqual(value, null, header);
      if (field === 'reset') fields.reset = style === 'anthropic' ? rfc3339UtcS(value) : durationS(value);
      else fields[field] = sfInteger(value);
    }
    assert.equal(fields.limit, LIMITS[dimension]);
    result[dimension] = fields;
  }
  return result;
}

function remaining(response, style = 'anthropic') {
  const limits = rateLimits(response, style);
  return DIMENSIONS.map((dimension) => limits[dimension].remaining);
}

/** [retry-after, retry-after-ms], both or neither (null). */
function retryAfter(response) {
  const seconds = response.headers.get('retry-after');
  const millis = response.headers.get('retry-after-ms');
  assert.equal(seconds === null, millis === null);
  return seconds === null ? null : [delaySeconds(seconds), sfInteger(millis)];
}

function events(text) {
  return text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)));
}

let gateway;
before(async () => { gateway = await servers(); });
after(async () => { await gateway?.close(); });

test('exact remaining after a sequence of requests', async () => {
  // "hello": 5 bytes -> ceil(5 / 4) + 4 = 6 input tokens; 10 output tokens of 100 reserved.
  const first = await post(gateway.url, 'seq', request('echo-10', 100, 'hello'));
  assert.equal(first.status, 200);
  assert.deepEqual(remaining(first), [59, 100_000 - 6, 20_000 - 10]);
  assert.equal(retryAfter(first), null);
  // system (14 bytes) + two messages (8 + 2 bytes): ceil(24 / 4) + 2 * 4 = 14.
  const second = await post(gateway.url, 'seq', {
    model: 'echo-7',
    max_tokens: 50,
    system: 'You are terse.',
    messages: [{ role: 'user', content: 'hi there' }, { role: 'user', content: 'ok' }],
  });
  assert.deepEqual(remaining(second), [58, 100_000 - 6 - 14, 20_000 - 10 - 7]);
  // Text blocks, multibyte: "naïve café €" is 16 bytes of UTF-8 -> 4 + 4 = 8.
  const blocks = [{ type: 'text', text: 'naïve ' }, { type: 'text', text: 'café €' }];
  const third = await post(gateway.url, 'seq', request('echo-3', 3, blocks));
  assert.deepEqual(remaining(third), [57, 100_000 - 28, 20_000 - 20]);
  assert.notEqual(JSON.parse(third.text).usage.input_tokens, 8); // the model's own count is not charged
  const reset = rateLimits(third).requests.reset;
  assert.ok(reset > 0 && reset <= 4, String(reset)); // 3 requests of 60/min: full again in 3 s
  assert.deepEqual(remaining(await post(gateway.url, 'seq-other', request('echo-1', 1, 'hello'))), [59, 99_994, 19_999]);
});

test('a streamed response is settled at its end', async () => {
  const response = await post(gateway.url, 'stream', request('echo-12', 200, 'hi', { stream: true }));
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /^text\/event-stream/);
  // Headers go out before the body: they show the reservation (200 output tokens).
  assert.deepEqual(remaining(response), [59, 100_000 - 5, 20_000 - 200]);
  const payloads = events(response.text);
  assert.equal(payloads.filter((p) => p.type === 'content_block_delta').length, 12);
  assert.equal(payloads.at(-2).usage.output_tokens, 12);
  // Settled with the reported 12 before the stream's end reached the client.
  const next = await post(gateway.url, 'stream', request('echo-0', 1));
  assert.deepEqual(remaining(next), [58, 100_000 - 10, 20_000 - 12]);
});

test('an upstream error refunds the output reservation', async () => {
  const failed = await post(gateway.url, 'error', request('error', 4000));
  assert.equal(failed.status, 500);
  assert.equal(JSON.parse(failed.text).error.type, 'api_error');
  // The request and its input are charged; the 4000 output tokens are all refunded.
  assert.deepEqual(remaining(failed), [59, 100_000 - 5, 20_000]);
  const streamed = await post(gateway.url, 'error', request('error', 4000, 'hi', { stream: true }));
  assert.equal(streamed.status, 500);
  assert.deepEqual(remaining(streamed), [58, 100_000 - 10, 20_000]);
  // The upstream closing the connection without an answer: 502, refunded too.
  const cut = await post(gateway.url, 'error', request('cut-5', 4000));
  assert.equal(cut.status, 502);
  assert.deepEqual(remaining(cut), [57, 100_000 - 15, 20_000]);
});

test('a stream cut by the upstream is settled with what was streamed', async () => {
  const response = await post(gateway.url, 'cut', request('cut-5', 1000, 'hi', { stream: true }));
  const payloads = events(response.text);
  assert.equal(payloads.filter((p) => p.type === 'content_block_delta').length, 5);
  assert.deepEqual(payloads.at(-1), { type: 'error', error: { type: 'upstream_error' } });
  // 5 tokens of 4 bytes were streamed: ceil(20 / 4) = 5 charged, 995 refunded.
  const next = await post(gateway.url, 'cut', request('echo-0', 1));
  assert.deepEqual(remaining(next), [58, 100_000 - 10, 20_000 - 5]);
});

test('usage sent by the client changes nothing', async () => {
  const honest = await post(gateway.url, 'honest', request('echo-40', 100));
  const lie = { input_tokens: 0, output_tokens: 0 };
  const lying = await post(gateway.url, 'lying', request('echo-40', 100, 'hi', { usage: lie, metadata: { usage: lie } }));
  assert.equal(honest.status, 200);
  assert.equal(lying.status, 200);
  assert.deepEqual(remaining(lying), [59, 100_000 - 5, 20_000 - 40]);
  assert.deepEqual(remaining(lying), remaining(honest));
  const streamed = await post(gateway.url, 'lying', request('echo-40', 100, 'hi', { stream: true, usage: lie }));
  assert.equal(streamed.status, 200);
  const next = await post(gateway.url, 'lying', request('echo-0', 1, 'hi', { usage: { output_tokens: -1000 } }));
  assert.deepEqual(remaining(next), [57, 100_000 - 15, 20_000 - 80]);
});

/** Streams `body` for `key`, and closes the connection after `deltas` content_block_delta events. */
function leaveAfter(url, key, body, deltas) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/messages`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'x-api-key': key },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
        if (text.split('"content_block_delta"').length - 1 >= deltas) { // quoted: in each `data:` line
          req.destroy();
          resolve(res);
        }
      });
      res.on('end', () => reject(new Error('the stream ended before the client left')));
    });
    req.on('error', (error) => { if (!req.destroyed) reject(error); });
    req.end(JSON.stringify(body));
  });
}

test('a client leaving mid-stream is settled with what was streamed', async () => {
  // hang-7: 7 tokens, then the model waits 30 s. The client leaves after the 7th.
  const response = await leaveAfter(gateway.url, 'leaver', request('hang-7', 500, 'hi', { stream: true }), 7);
  assert.equal(response.statusCode, 200);
  // The gateway settles 7 (what was streamed) once it notices: poll with requests that net 0
  // output tokens (1 reserved, 0 used) until it has.
  const deadline = Date.now() + 10_000;
  let polls = 0;
  let left;
  for (;;) {
    polls += 1;
    left = remaining(await post(gateway.url, 'leaver', request('echo-0', 1)));
    if (left[2] !== 20_000 - 500 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.deepEqual(left, [59 - polls, 100_000 - 5 * (1 + polls), 20_000 - 7]);
});

test('429 when requests are exhausted', async () => {
  let last;
  for (let index = 0; index < 60; index++) {
    last = await post(gateway.url, 'burst', request('echo-0', 1));
    assert.equal(last.status, 200);
  }
  assert.deepEqual(remaining(last), [0, 100_000 - 300, 20_000]);
  const denied = await post(gateway.url, 'burst', request('echo-0', 1));
  assert.equal(denied.status, 429);
  assert.deepEqual(JSON.parse(denied.text), { error: 'rate_limited', retry_after: 1 });
  assert.deepEqual(remaining(denied), remaining(last)); // a denial charges nothing
  assert.deepEqual(retryAfter(denied), [1, 1000]); // one request of 60/min: 1 s
});

test('429 when output tokens are in debt', async () => {
  // The upstream reports 25,000 output tokens where 100 were reserved: the excess is charged
  // anyway, so the key owes 5,000 tokens.
  const overrun = await post(gateway.url, 'debt', request('overrun-25000', 100));
  assert.equal(overrun.status, 200);
  assert.deepEqual(remaining(overrun), [59, 99_995, 0]);
  assert.ok(Math.abs(rateLimits(overrun).output_tokens.reset - 75) <= 2); // 25k at 20k/min
  assert.notEqual(retryAfter(overrun), null); // in debt: the wait until it is repaid
  const denied = await post(gateway.url, 'debt', request('echo-1', 100));
  assert.equal(denied.status, 429);
  // 5,000 owed + 100 asked, at 20,000 per 60 s: 15.3 s.
  assert.deepEqual(retryAfter(denied), [16, 15_300]);
  assert.deepEqual(remaining(denied), [59, 99_995, 0]);
});

test('a 429 that can never be admitted has no retry-after', async () => {
  const denied = await post(gateway.url, 'huge', request('echo-1', 1, 'x'.repeat(400_000))); // 100,004 input tokens
  assert.equal(denied.status, 429);
  assert.deepEqual(JSON.parse(denied.text), { error: 'rate_limited', retry_after: null });
  assert.equal(retryAfter(denied), null);
  assert.deepEqual(remaining(denied), [60, 100_000, 20_000]);
});

test('bad requests are refused and charge nothing', async () => {
  assert.equal((await post(gateway.url, null, request('echo-1', 1))).status, 401);
  assert.equal((await post(gateway.url, 'bad', { model: 'echo-1', messages: [] })).status, 400);
  assert.equal((await post(gateway.url, 'bad', request('echo-1', 4097))).status, 400);
  assert.equal((await post(gateway.url, 'bad', request('echo-1', true))).status, 400);
  assert.equal((await post(gateway.url, 'bad', request('echo-1', 1, [{ type: 'image' }]))).status, 400);
  const bearer = await fetch(`${gateway.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer bad' },
    body: JSON.stringify(request('echo-1', 1)),
  });
  await bearer.text();
  assert.equal(bearer.status, 200);
  assert.deepEqual(remaining(bearer), [59, 99_995, 19_999]);
});

test('the openai header style', async () => {
  const openai = await servers('--header-style', 'openai');
  try {
    const first = await post(openai.url, 'k', request('echo-10', 100));
    assert.equal(first.status, 200);
    assert.deepEqual(remaining(first, 'openai'), [59, 99_995, 19_990]);
    assert.ok(![...first.headers.keys()].some((name) => name.startsWith('anthropic-')));
    const limits = rateLimits(first, 'openai');
    assert.equal(limits.requests.reset, 1); // "1s"
    assert.equal(limits.output_tokens.reset, 0.03); // 10 of 20k/min: "30ms"
    for (let index = 0; index < 59; index++) await post(openai.url, 'k', request('echo-0', 1));
    const denied = await post(openai.url, 'k', request('echo-0', 1));
    assert.equal(denied.status, 429);
    assert.deepEqual(retryAfter(denied), [1, 1000]);
    assert.deepEqual(remaining(denied, 'openai'), [0, 100_000 - 300, 19_990]);
  } finally {
    await openai.close();
  }
});
