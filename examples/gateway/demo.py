"""``make demo-gateway``: the fake model, the FastAPI gateway (anthropic-style headers) and the
Express gateway (``--header-style openai``) on free loopback ports; a few requests through
each show the headers, the settle of a stream, an upstream error refunded and a 429; every
server is stopped however the demo ends. The gateways run with ``--frozen-clock`` (no refill
between requests), so that the numbers add up exactly.

Usage: ``python demo.py`` (with cellgate, fastapi, uvicorn and httpx installed; ``node`` on
PATH, or $NODE, finding express and cellgate, e.g. through $NODE_PATH).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from processes import start, stop

HERE = Path(__file__).resolve().parent


def show(label: str, response: httpx.Response) -> None:
    """The status, the `remaining` header of each dimension and the retry headers."""
    print(f"  {label}: {response.status_code}")
    for name, value in response.headers.items():
        if "remaining" in name or name.startswith("retry-after"):
            print(f"      {name}: {value}")
    if response.status_code == 429:
        print(f"      body: {response.text}")


def body(model: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Hello!"}], **extra}


def tour(name: str, url: str) -> None:
    print(f"\n{name} on {url}")
    print("  per key: 60 requests, 100,000 input tokens, 20,000 output tokens a minute; 'Hello!' is 6 input tokens")
    with httpx.Client(base_url=url, headers={"x-api-key": f"demo-{name}"}, timeout=10) as client:
        show("echo-12, max_tokens 256 (12 used, 244 refunded)", client.post("/v1/messages", json=body("echo-12", 256)))
        with client.stream("POST", "/v1/messages", json=body("echo-20", 512, stream=True)) as streamed:
            show("echo-20 streamed, max_tokens 512 (headers show the reservation)", streamed)
            deltas = sum('"content_block_delta"' in line for line in streamed.iter_lines())
            print(f"      ... {deltas} tokens streamed, settled at the stream's end")
        show("error, max_tokens 4000 (the upstream fails: all refunded)", client.post("/v1/messages", json=body("error", 4000)))
        show("overrun-25000, max_tokens 100 (upstream reports 25,000: debt)", client.post("/v1/messages", json=body("overrun-25000", 100)))
        show("echo-1, max_tokens 100", client.post("/v1/messages", json=body("echo-1", 100)))


def main() -> int:
    # SIGTERM (a timeout, a CI stop) unwinds through the `finally` below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    node = os.environ.get("NODE", "node")
    processes: list[subprocess.Popen[str]] = []
    try:
        model, model_url = start([sys.executable, str(HERE / "fake_model.py"), "--port", "0"])
        processes.append(model)
        python_gateway, python_url = start(
            [sys.executable, str(HERE / "python" / "gateway.py"), "--port", "0", "--upstream", model_url, "--frozen-clock"]
        )
        processes.append(python_gateway)
        node_gateway, node_url = start(
            [node, str(HERE / "node" / "gateway.js"), "--port", "0", "--upstream", model_url, "--frozen-clock", "--header-style", "openai"]
        )
        processes.append(node_gateway)
        tour("FastAPI gateway (anthropic headers)", python_url)
        tour("Express gateway (--header-style openai)", node_url)
    finally:
        for process in reversed(processes):
            stop(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
