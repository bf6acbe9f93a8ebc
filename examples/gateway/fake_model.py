"""A fake model API for the gateway examples: standard library only, on 127.0.0.1.

``python3 fake_model.py [--port 0]`` prints ``fake model listening on http://127.0.0.1:PORT``
(the port it bound: 0 picks a free one) and serves ``POST /v1/messages``, a small subset of
an Anthropic-style Messages API::

    {"model": "echo-12", "max_tokens": 100, "messages": [...], "stream": false}

The reply is ``"tok "`` repeated: every token is 4 bytes of text. The model name says what
the server does, so that tests and the demo can steer it through the gateway:

- ``echo-N``: answers N tokens, at most ``max_tokens``, as a real model stops there;
- ``overrun-N``: answers N tokens whatever ``max_tokens`` says (a misbehaving upstream that
  reports more than the gateway reserved);
- ``error``: HTTP 500 with an error body;
- ``cut-N``: streams N tokens, then closes the connection without a usage block and without
  the end of the chunked body (without a streamed request: closes it before answering);
- ``hang-N``: streams N tokens, then sends nothing more for 30 seconds, or until the
  client goes away, then finishes as ``echo-N`` would.

A non-streamed answer is one JSON object with ``usage: {input_tokens, output_tokens}``. A
streamed one (``"stream": true``) is server-sent events: ``message_start``, one
``content_block_delta`` per token, then ``message_delta`` with the final ``usage`` and
``message_stop``. ``input_tokens`` is the server's own count (UTF-8 bytes / 3, rounded up),
deliberately not the gateways' estimate: the gateways charge their own estimate.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_TEXT = "tok "
HANG_S = 30.0
MODEL_PATTERN = re.compile(r"(echo|overrun|cut|hang)-([0-9]{1,6})|error")


def message_text(body: dict[str, Any]) -> str:
    """Every text of the request, for the server's own input count."""
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(b.get("text", "") for b in content if isinstance(b, dict))
    return "".join(parts)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body are two writes: without this, Nagle's algorithm and delayed ACKs
        # hold each answer back 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def event(self, name: str, payload: dict[str, Any]) -> None:
        """One server-sent event, as one chunk of the chunked body."""
        data = f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
            model = str(body["model"])
            max_tokens = int(body["max_tokens"])
        except (ValueError, KeyError, TypeError):
            self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error"}})
            return
        match = MODEL_PATTERN.fullmatch(model)
        if self.path != "/v1/messages" or match is None:
            self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "model": model}})
            return
        if model == "error":
            self.send_json(500, {"type": "error", "error": {"type": "api_error", "message": "model failed"}})
            return
        behaviour, count = match.group(1), int(match.group(2))
        tokens = count if behaviour == "overrun" else min(count, max_tokens)
        usage = {
            "input_tokens": math.ceil(len(message_text(body).encode()) / 3),
            "output_tokens": tokens,
        }
        if not body.get("stream"):
            if behaviour == "cut":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_json(200, {
                "type": "message",
                "model": model,
                "content": [{"type": "text", "text": TOKEN_TEXT * tokens}],
                "usage": usage,
            })
            return
        self.close_connection = True
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")  # so that a cut is seen as one
        self.end_headers()
        try:
            self.event("message_start", {"type": "message_start", "message": {"model": model}})
            for _ in range(tokens):
                self.event("content_block_delta", {
                    "type": "content_block_delta",
                    "delta": {"type": "text_delta", "text": TOKEN_TEXT},
                })
            if behaviour == "cut":
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if behaviour == "hang":
                self.wait_for_client_to_leave(HANG_S)
            self.event("message_delta", {"type": "message_delta", "usage": usage})
            self.event("message_stop", {"type": "message_stop"})
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def wait_for_client_to_leave(self, timeout_s: float) -> None:
        """Sleeps until `timeout_s` has passed or the peer has closed the connection."""
        deadline = time.monotonic() + timeout_s
        self.connection.settimeout(0.05)
        while time.monotonic() < deadline:
            try:
                if self.connection.recv(1, socket.MSG_PEEK) == b"":
                    raise ConnectionResetError
            except socket.timeout:
                continue
        self.connection.settimeout(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"fake model listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
