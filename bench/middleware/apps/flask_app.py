"""One Flask app, three variants that differ only in the limiter in front of the route,
chosen by the environment variable ``BENCH_VARIANT``; served by gunicorn as ``flask_app:app``.

``none``: no limiter. ``cellgate``: ``cellgate.wsgi.RateLimitMiddleware`` wrapping the Flask
app's ``wsgi_app`` (draft-10 ``RateLimit``/``RateLimit-Policy`` headers). ``peer``:
Flask-Limiter over its in-memory storage with ``headers_enabled=True``
(``X-RateLimit-Limit``/``-Remaining``/``-Reset``). Every
limiter keys by the client address and admits every request of the run (a billion a minute).
"""

from __future__ import annotations

import os

from flask import Flask

LIMIT = "1000000000/minute"


def build(variant: str) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def index() -> tuple[str, int, dict[str, str]]:
        return "ok", 200, {"Content-Type": "text/plain"}

    if variant == "none":
        return app
    if variant == "cellgate":
        from cellgate import Limiter
        from cellgate.wsgi import RateLimitMiddleware

        app.wsgi_app = RateLimitMiddleware(app.wsgi_app, limiter=Limiter(LIMIT))  # type: ignore[method-assign]
        return app
    if variant == "peer":
        from flask_limiter import Limiter as FlaskLimiter
        from flask_limiter.util import get_remote_address

        FlaskLimiter(
            get_remote_address, app=app, default_limits=[LIMIT], headers_enabled=True, storage_uri="memory://"
        )
        return app
    raise ValueError(f"BENCH_VARIANT: expected none, cellgate or peer, got {variant!r}")


app = build(os.environ.get("BENCH_VARIANT", "none"))
