"""``block_ms`` through the middleware: a client blocked after a denial gets 429s with the
block in ``Retry-After`` until it ends (ASGI on Starlette, WSGI on Flask)."""

from __future__ import annotations

import asyncio

import pytest

from cellgate import Limiter, ManualClock
from cellgate.asgi import RateLimitMiddleware as ASGIRateLimit
from cellgate.wsgi import RateLimitMiddleware as WSGIRateLimit

flask = pytest.importorskip("flask")
pytest.importorskip("starlette.applications")
import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

MINUTE_NS = 60 * 1_000_000_000


def asgi_get(app: object, path: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(send())


def test_asgi_a_blocked_client_waits_out_the_block() -> None:
    clock = ManualClock()
    limiter = Limiter("3/minute", block_ms=10 * 60_000, clock=clock)
    app = Starlette(routes=[Route("/login", lambda request: PlainTextResponse("no", status_code=401))])
    wrapped = ASGIRateLimit(app, limiter=limiter)
    for _ in range(3):
        assert asgi_get(wrapped, "/login").status_code == 401
    blocked = asgi_get(wrapped, "/login")
    assert blocked.status_code == 429
    # Ten minutes, then the 20 s one unit takes to refill at 3/minute.
    assert blocked.headers["retry-after"] == "620"
    assert blocked.json() == {"error": "rate_limited", "retry_after": 620}
    clock.advance_ns(5 * MINUTE_NS)
    still = asgi_get(wrapped, "/login")
    assert still.status_code == 429 and still.headers["retry-after"] == "320"  # not extended
    clock.advance_ns(320 * 1_000_000_000)
    assert asgi_get(wrapped, "/login").status_code == 401


def test_wsgi_flask_a_blocked_client_waits_out_the_block() -> None:
    clock = ManualClock()
    app = flask.Flask(__name__)

    @app.get("/login")
    def login() -> tuple[str, int]:
        return ("no", 401)

    app.wsgi_app = WSGIRateLimit(app.wsgi_app, limiter=Limiter("3/minute", block_ms=60_000, clock=clock))  # type: ignore[method-assign]
    client = app.test_client()
    for _ in range(3):
        assert client.get("/login").status_code == 401
    blocked = client.get("/login")
    assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "80"
    clock.advance_ns(80 * 1_000_000_000 - 1)
    assert client.get("/login").status_code == 429
