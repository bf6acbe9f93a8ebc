'use strict';
// An LLM gateway on Express: per API key, 60 requests, 100,000 input tokens and 20,000 output
// tokens a minute, as one cellgate Policy of three dimensions, in front of a model API
// (POST /v1/messages, Anthropic-style) reached with fetch.
//
// - Input tokens are charged from the request, by an estimate anyone can recompute:
//   ceil(UTF-8 bytes of every text / 4) + 4 per message (estimateInputTokens).
// - Output tokens are reserved from max_tokens (required, 1 to 4096) and settled from the
//   usage the upstream reports: the unused part is refunded, an excess is charged into debt.
// - Usage sent by the client is never read.
// - Any dimension exhausted: 429 with the per-dimension headers, retry-after and
//   retry-after-ms; successful responses carry the headers too.
// - The reservation is settled however the exchange ends: an upstream error refunds the output
//   reservation, a stream cut short (by the upstream or by the client leaving) is settled with
//   the tokens streamed so far.
//
// Run: node gateway.js --upstream http://127.0.0.1:8001 [--port 8000] [--header-style openai]

const { once } = require('node:events');
const { parseArgs } = require('node:util');
const express = require('express');
const { Policy, ManualClock, headers, limitedBody } = require('cellgate');

const LIMITS = [
  { name: 'requests', dimension: 'requests', rate: '60/minute' },
  { name: 'input_tokens', dimension: 'input_tokens', rate: '100000/minute' },
  { name: 'output_tokens', dimension: 'output_tokens', rate: '20000/minute' },
];
const MAX_OUTPUT_TOKENS = 4096;
const MESSAGE_OVERHEAD_TOKENS = 4;
const BYTES_PER_TOKEN = 4;
const UPSTREAM_ERROR_EVENT = 'event: error\ndata: {"type":"error","error":{"type":"upstream_error"}}\n\n';

/** The request cannot be forwarded; the message says why (a 400). */
class BadRequest extends Error {}

/** The token estimate of a text: its UTF-8 bytes / 4, rounded up. */
function textTokens(text) {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / BYTES_PER_TOKEN);
}

/** The text of a `system` or message `content`: a string or a list of text blocks. */
function contentText(content, field) {
  if (typeof content === 'string') return content;
  const isTextBlock = (block) => block !== null && typeof block === 'object' && block.type === 'text' && typeof block.text === 'string';
  if (Array.isArray(content) && content.every(isTextBlock)) return content.map((block) => block.text).join('');
  throw new BadRequest(`${field} must be a string or a list of text blocks`);
}

/** ceil(UTF-8 bytes of the system text and every message's text / 4) + 4 per message. */
function estimateInputTokens(body) {
  const { messages } = body;
  if (!Array.isArray(messages) || messages.length === 0) throw new BadRequest('messages must be a non-empty list');
  const texts = 'system' in body ? [contentText(body.system, 'system')] : [];
  messages.forEach((message, index) => {
    if (message === null || typeof message !== 'object' || typeof message.role !== 'string') {
      throw new BadRequest(`messages[${index}] must be an object with a role`);
    }
    texts.push(contentText(message.content, `messages[${index}].content`));
  });
  return textTokens(texts.join('')) + MESSAGE_OVERHEAD_TOKENS * messages.length;
}

/**
 * { inputTokens, maxTokens, stream } of a request body, or a BadRequest. Any `usage` the
 * client put in the body is ignored like every other unknown field.
 */
function parseRequest(raw) {
  let body;
  try {
    body = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : '');
  } catch {
    throw new BadRequest('the body must be JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('the body must be a JSON object');
  const maxTokens = body.max_tokens;
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_OUTPUT_TOKENS) {
    throw new BadRequest(`max_tokens must be an integer from 1 to ${MAX_OUTPUT_TOKENS}`);
  }
  const stream = body.stream === undefined ? false : body.stream;
  if (typeof stream !== 'boolean') throw new BadRequest('stream must be a boolean');
  return { inputTokens: estimateInputTokens(body), maxTokens, stream };
}

/** usage.output_tokens as the upstream reported it, if it is a count; else null. */
function reportedOutputTokens(usage) {
  const tokens = usage !== null && typeof usage === 'object' ? usage.output_tokens : undefined;
  return Number.isSafeInteger(tokens) && tokens >= 0 ? tokens : null;
}

/**
 * Reads the upstream's server-sent events as they pass: the text streamed so far and the
 * final usage (message_delta), if it came.
 */
class StreamMeter {
  constructor() {
    this.decoder = new TextDecoder();
    this.pending = '';
    this.textBytes = 0;
    this.finalOutputTokens = null;
  }

  feed(chunk) {
    this.pending += this.decoder.decode(chunk, { stream: true }).replaceAll('\r\n', '\n');
    const events = this.pending.split('\n\n');
    this.pending = events.pop();
    for (const event of events) {
      const data = event.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim()).join('\n');
      let payload;
      try {
        payload = JSON.parse(data);
      } catch {
        continue;
      }
      if (payload === null || typeof payload !== 'object') continue;
      if (payload.type === 'content_block_delta' && typeof payload.delta?.text === 'string') {
        this.textBytes += Buffer.byteLength(payload.delta.text, 'utf8');
      } else if (payload.type === 'message_delta') {
        this.finalOutputTokens = reportedOutputTokens(payload.usage);
      }
    }
  }

  /** The reported final usage, else the estimate of the text streamed so far. */
  outputTokens() {
    return this.finalOutputTokens ?? Math.ceil(this.textBytes / BYTES_PER_TOKEN);
  }
}

/**
 * Settles a reservation exactly once: requests and input tokens keep their charge, output
 * tokens become the count given to the first call. Later calls return the state after it.
 */
function settlement(policy, reservation) {
  let decision = null;
  return (outputTokens) => {
    decision ??= policy.settle(reservation, { output_tokens: outputTokens });
    return decision;
  };
}

/** The caller's key: x-api-key, else Authorization: Bearer <key>. */
function apiKey(req) {
  const key = req.get('x-api-key');
  if (key) return key;
  const [scheme, token] = (req.get('authorization') ?? '').split(/ +/, 2);
  return scheme?.toLowerCase() === 'bearer' && token ? token : null;
}

/**
 * The gateway, forwarding to `${upstream}/v1/messages`. `clock` (tests, the demo): a
 * ManualClock that nobody advances freezes time, so the headers' numbers are exact.
 *
 * @param {{ upstream: string, headerStyle?: 'anthropic' | 'openai', clock?: import('cellgate').ManualClock }} options
 */
function createApp({ upstream, headerStyle = 'anthropic', clock }) {
  const policy = new Policy(LIMITS, clock ? { clock } : {});
  const upstreamUrl = new URL('/v1/messages', upstream);
  const rateHeaders = (decision) => headers(decision, { style: headerStyle });
  const app = express();
  app.disable('x-powered-by');

  app.post('/v1/messages', express.raw({ type: () => true, limit: '2mb' }), async (req, res) => {
    const key = apiKey(req);
    if (key === null) return res.status(401).json({ error: 'missing_api_key' });
    let request;
    try {
      request = parseRequest(req.body);
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      return res.status(400).json({ error: 'invalid_request', message: error.message });
    }
    const { decision, reservation } = policy.reserve(key, {
      requests: 1,
      input_tokens: request.inputTokens,
      output_tokens: request.maxTokens,
    });
    if (reservation === null) {
      return res.status(429).set(rateHeaders(decision)).type('application/json').send(limitedBody(decision));
    }
    const settle = settlement(policy, reservation);
    // A client leaving a stream stops the upstream's (the stream is settled with what it got).
    // A non-streamed answer is let finish and settled from its usage: it was generated anyway.
    const abort = new AbortController();
    if (request.stream) res.on('close', () => abort.abort());
    let meter = null;
    try {
      let upstreamResponse;
      try {
        upstreamResponse = await fetch(upstreamUrl, {
          method: 'POST',
          body: req.body,
          headers: { 'content-type': 'application/json' },
          signal: abort.signal,
        });
      } catch {
        return res.status(502).set(rateHeaders(settle(0))).json({ error: 'upstream_unavailable' });
      }
      if (upstreamResponse.status !== 200) {
        const body = Buffer.from(await upstreamResponse.arrayBuffer());
        const type = upstreamResponse.headers.get('content-type') ?? 'application/json';
        return res.status(upstreamResponse.status).set(rateHeaders(settle(0))).type(type).send(body);
      }
      if (!request.stream) {
        let answer;
        try {
          answer = await upstreamResponse.json();
        } catch {
          return res.status(502).set(rateHeaders(settle(0))).json({ error: 'upstream_invalid' });
        }
        let outputTokens = reportedOutputTokens(answer?.usage);
        if (outputTokens === null) { // no usage reported: estimate the text returned
          const blocks = Array.isArray(answer?.content) ? answer.content : [];
          outputTokens = textTokens(blocks.map((block) => (typeof block?.text === 'string' ? block.text : '')).join(''));
        }
        return res.status(200).set(rateHeaders(settle(outputTokens))).json(answer);
      }
      // Headers go out before the body: they show the reservation.
      res.status(200).set(rateHeaders(decision)).set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      meter = new StreamMeter();
      try {
        for await (const chunk of upstreamResponse.body) {
          meter.feed(chunk);
          if (!res.write(chunk)) await once(res, 'drain', { signal: abort.signal });
        }
      } catch (error) {
        if (!abort.signal.aborted) { // the upstream broke off: settle, then tell the client why
          settle(meter.outputTokens());
          res.write(UPSTREAM_ERROR_EVENT);
        }
      }
      // Before the stream's end is sent: a client that has read the whole stream finds it settled.
      settle(meter.outputTokens());
      res.end();
    } finally {
      settle(meter === null ? 0 : meter.outputTokens()); // an exception: refund, or what was streamed
    }
  });
  return app;
}

function main() {
  const { values } = parseArgs({
    options: {
      upstream: { type: 'string' },
      port: { type: 'string', default: '8000' },
      'header-style': { type: 'string', default: 'anthropic' },
      'frozen-clock': { type: 'boolean', default: false },
    },
  });
  if (!values.upstream) throw new Error('--upstream URL is required (the model API base URL)');
  if (!['anthropic', 'openai'].includes(values['header-style'])) throw new Error("--header-style must be 'anthropic' or 'openai'");
  const app = createApp({
    upstream: values.upstream,
    headerStyle: /** @type {'anthropic' | 'openai'} */ (values['header-style']),
    clock: values['frozen-clock'] ? new ManualClock() : undefined,
  });
  const server = app.listen(Number(values.port), '127.0.0.1', () => {
    const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
    console.log(`gateway listening on http://127.0.0.1:${port}`);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

module.exports = { createApp, estimateInputTokens, parseRequest, StreamMeter, LIMITS, MAX_OUTPUT_TOKENS };

if (require.main === module) main();
