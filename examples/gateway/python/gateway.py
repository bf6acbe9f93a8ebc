"""An LLM gateway on FastAPI: per API key, 60 requests, 100,000 input tokens and 20,000 output
tokens a minute, as one cellgate ``Policy`` of three dimensions, in front of a model API
(``POST /v1/messages``, Anthropic-style) reached with ``httpx.AsyncClient``.

- Input tokens are charged from the request, by an estimate anyone can recompute:
  ``ceil(UTF-8 bytes of every text / 4) + 4 per message`` (``estimate_input_tokens``).
- Output tokens are reserved from ``max_tokens`` (required, 1 to 4096) and settled from the
  usage the upstream reports: the unused part is refunded, an excess is charged into debt.
- Usage sent by the client is never read.
- Any dimension exhausted: 429 with the per-dimension headers, ``retry-after`` and
  ``retry-after-ms``; successful responses carry the headers too.
- The reservation is settled however the exchange ends: an upstream error refunds the
  output reservation, a stream cut short (by the upstream or by the client leaving) is settled
  with the tokens streamed so far.

Run: ``python gateway.py --upstream http://127.0.0.1:8001 [--port 8000]
[--header-style openai]``.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Literal, Optional

import anyio
import httpx
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cellgate import Decision, ManualClock, Policy, Reservation

HeaderStyle = Literal["anthropic", "openai"]
MAX_OUTPUT_TOKENS = 4096
MESSAGE_OVERHEAD_TOKENS = 4
BYTES_PER_TOKEN = 4


class BadRequest(Exception):
    """The request cannot be forwarded; the message says why (a 400)."""


def text_tokens(text: str) -> int:
    """The token estimate of a text: its UTF-8 bytes / 4, rounded up (a lone surrogate, which
    JSON allows, counts 3 bytes, as in JavaScript)."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN)


def content_text(content: Any, field: str) -> str:
    """The text of a ``system`` or message ``content``: a string or a list of text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        for block in content
    ):
        return "".join(block["text"] for block in content)
    raise BadRequest(f"{field} must be a string or a list of text blocks")


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """``ceil(UTF-8 bytes of the system text and every message's text / 4) + 4 per message``."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    texts = [content_text(body["system"], "system")] if "system" in body else []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{index}] must be an object with a role")
        texts.append(content_text(message.get("content"), f"messages[{index}].content"))
    return text_tokens("".join(texts)) + MESSAGE_OVERHEAD_TOKENS * len(messages)


def parse_request(raw: bytes) -> tuple[int, int, bool]:
    """``(input_tokens, max_tokens, stream)`` of a request body, or ``BadRequest``. Any
    ``usage`` the client put in the body is ignored like every other unknown field."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    max_tokens = body.get("max_tokens")
    if type(max_tokens) is not int or not 1 <= max_tokens <= MAX_OUTPUT_TOKENS:
        raise BadRequest(f"max_tokens must be an integer from 1 to {MAX_OUTPUT_TOKENS}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream must be a boolean")
    return estimate_input_tokens(body), max_tokens, stream


def reported_output_tokens(usage: Any) -> Optional[int]:
    """``usage.output_tokens`` as the upstream reported it, if it is a count."""
    tokens = usage.get("output_tokens") if isinstance(usage, dict) else None
    return tokens if type(tokens) is int and tokens >= 0 else None


class StreamMeter:
    """Reads the upstream's server-sent events as they pass: the text streamed so far and the
    final usage (``message_delta``), if it came."""

    def __init__(self) -> None:
        self.pending = b""
        self.text_bytes = 0
        self.final_output_tokens: Optional[int] = None

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk.replace(b"\r\n", b"\n")
        *events, self.pending = self.pending.split(b"\n\n")
        for event in events:
            data = b"\n".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
            try:
                payload = json.loads(data)
            except ValueError:
                continue
            if not isinstance(payload, dict):
                continue
            delta = payload.get("delta")
            if payload.get("type") == "content_block_delta" and isinstance(delta, dict):
                text = delta.get("text")
                if isinstance(text, str):
                    self.text_bytes += len(text.encode("utf-8", "surrogatepass"))
            elif payload.get("type") == "message_delta":
                self.final_output_tokens = reported_output_tokens(payload.get("usage"))

    def output_tokens(self) -> int:
        """The reported final usage, else the estimate of the text streamed so far."""
        if self.final_output_tokens is not None:
            return self.final_output_tokens
        return math.ceil(self.text_bytes / BYTES_PER_TOKEN)


class Settlement:
    """Settles a reservation exactly once: requests and input tokens keep their charge,
    output tokens become the count given to the first call. Later calls return the state
    after that settle."""

    def __init__(self, policy: Policy, reservation: Reservation) -> None:
        self.policy = policy
        self.reservation = reservation
        self.decision: Optional[Decision] = None

    def __call__(self, output_tokens: int) -> Decision:
        if self.decision is None:
            self.decision = self.policy.settle(self.reservation, output_tokens=output_tokens)
        return self.decision


UPSTREAM_ERROR_EVENT = b'event: error\ndata: {"type":"error","error":{"type":"upstream_error"}}\n\n'


class MeteredStream(StreamingResponse):
    """Relays the upstream's event stream and settles the reservation when the response
    ends, however it ends: finished, cut by the upstream, or cancelled because the client
    left (Starlette cancels the stream on a disconnect, before the generator may even have
    started, so the settle lives here rather than in the generator)."""

    def __init__(self, upstream: httpx.Response, settle: Settlement, headers: dict[str, str]):
        self.upstream = upstream
        self.meter = StreamMeter()
        self.settle = settle
        super().__init__(self.relay(), media_type="text/event-stream", headers=headers)

    async def relay(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.upstream.aiter_raw():
                self.meter.feed(chunk)
                yield chunk
        except httpx.HTTPError:  # the upstream broke off: settle, then tell the client why
            self.settle(self.meter.output_tokens())
            yield UPSTREAM_ERROR_EVENT
        finally:
            # Before the stream's last chunk is sent: a client that has read the whole stream
            # finds it settled. `__call__` settles when this never runs to its end.
            self.settle(self.meter.output_tokens())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.settle(self.meter.output_tokens())
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()


def api_key(request: Request) -> Optional[str]:
    """The caller's key: ``x-api-key``, else ``Authorization: Bearer <key>``."""
    key = request.headers.get("x-api-key")
    if not key:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    return key or None


def create_app(
    upstream_url: str, header_style: HeaderStyle = "anthropic", clock: Optional[ManualClock] = None
) -> FastAPI:
    """The gateway, forwarding to ``{upstream_url}/v1/messages``. ``clock`` (tests, the demo):
    a ``ManualClock`` that nobody advances freezes time, so the headers' numbers are exact."""
    policy = Policy(
        {"requests": "60/minute", "input_tokens": "100000/minute", "output_tokens": "20000/minute"},
        clock=clock,
    )
    client = httpx.AsyncClient(base_url=upstream_url, timeout=httpx.Timeout(60.0, connect=5.0))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(lifespan=lifespan)

    def rate_headers(decision: Decision) -> dict[str, str]:
        return dict(decision.headers(header_style))

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        key = api_key(request)
        if key is None:
            return JSONResponse({"error": "missing_api_key"}, 401)
        raw = await request.body()
        try:
            input_tokens, max_tokens, stream = parse_request(raw)
        except BadRequest as error:
            return JSONResponse({"error": "invalid_request", "message": str(error)}, 400)
        reservation = policy.reserve(key, requests=1, input_tokens=input_tokens, output_tokens=max_tokens)
        if not reservation:
            decision = reservation.decision
            return Response(decision.error_body(), 429, rate_headers(decision), media_type="application/json")

        settle = Settlement(policy, reservation)
        streaming = False
        try:
            upstream_request = client.build_request(
                "POST", "/v1/messages", content=raw, headers={"content-type": "application/json"}
            )
            try:
                upstream = await client.send(upstream_request, stream=stream)
            except httpx.HTTPError:
                return JSONResponse({"error": "upstream_unavailable"}, 502, rate_headers(settle(0)))
            if upstream.status_code != 200:
                body = await upstream.aread()
                await upstream.aclose()
                media_type = upstream.headers.get("content-type", "application/json")
                return Response(body, upstream.status_code, rate_headers(settle(0)), media_type=media_type)
            if stream:
                streaming = True  # from here the response settles
                return MeteredStream(upstream, settle, rate_headers(reservation.decision))
            try:
                answer = upstream.json()
            except ValueError:
                return JSONResponse({"error": "upstream_invalid"}, 502, rate_headers(settle(0)))
            output_tokens = reported_output_tokens(answer.get("usage") if isinstance(answer, dict) else None)
            if output_tokens is None:  # no usage reported: estimate the text returned
                blocks = answer.get("content") if isinstance(answer, dict) else None
                texts = [b.get("text") for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []
                output_tokens = text_tokens("".join(t for t in texts if isinstance(t, str)))
            return JSONResponse(answer, 200, rate_headers(settle(output_tokens)))
        finally:
            if not streaming:
                settle(0)  # an exception, or a cancellation: refund the output reservation

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="cellgate LLM gateway (FastAPI)")
    parser.add_argument("--upstream", required=True, help="the model API's base URL")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--header-style", choices=["anthropic", "openai"], default="anthropic")
    parser.add_argument("--frozen-clock", action="store_true", help="time stands still (tests, demo)")
    args = parser.parse_args()
    app = create_app(args.upstream, args.header_style, ManualClock() if args.frozen_clock else None)
    # Bind first, so that the line below names the port actually bound. IPPROTO_TCP named:
    # asyncio sets TCP_NODELAY only on sockets whose protocol says TCP (proto 0 does not),
    # and without it every response waits out a delayed ACK (40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    print(f"gateway listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
