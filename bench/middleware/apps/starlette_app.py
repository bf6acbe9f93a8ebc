"""One Starlette app, three variants that differ only in the limiter in front of the route,
chosen by the environment variable ``BENCH_VARIANT``; served by uvicorn as ``starlette_app:app``.

``none``: no limiter. ``cellgate``: ``cellgate.asgi.RateLimitMiddleware`` (draft-10
``RateLimit``/``RateLimit-Policy`` headers). ``peer``: slowapi's pure-ASGI middleware
(``SlowAPIASGIMiddleware``, the faster of its two) over its in-memory storage, with
``headers_enabled=True`` (``X-RateLimit-Limit``/``-Remaining``/``-Reset``). Every limiter
keys by the client address and admits every request of the run (a billion a minute).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

LIMIT = "1000000000/minute"


async def index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def build(variant: str) -> Starlette:
    routes = [Route("/", index)]
    if variant == "none":
        return Starlette(routes=routes)
    if variant == "cellgate":
        from cellgate import Limiter
        from cellgate.asgi import RateLimitMiddleware

        return Starlette(routes=routes, middleware=[Middleware(RateLimitMiddleware, limiter=Limiter(LIMIT))])
    if variant == "peer":
        from slowapi import Limiter as SlowLimiter
        from slowapi.middleware import SlowAPIASGIMiddleware
        from slowapi.util import get_remote_address

        limiter = SlowLimiter(
            key_func=get_remote_address, default_limits=[LIMIT], headers_enabled=True, storage_uri="memory://"
        )
        app = Starlette(routes=routes, middleware=[Middleware(SlowAPIASGIMiddleware)])
        app.state.limiter = limiter
        return app
    raise ValueError(f"BENCH_VARIANT: expected none, cellgate or peer, got {variant!r}")


app = build(os.environ.get("BENCH_VARIANT", "none"))
