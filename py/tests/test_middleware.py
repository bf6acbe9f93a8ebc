"""ASGI middleware on real Starlette and FastAPI apps (through an ASGI client), WSGI
middleware on a real Flask app (through its test client)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cellgate import Limiter, ManualClock, TableFull
from cellgate.asgi import RateLimitMiddleware as ASGIRateLimit
from cellgate.wsgi import RateLimitMiddleware as WSGIRateLimit

fastapi = pytest.importorskip("fastapi")
flask = pytest.importorskip("flask")
starlette_applications = pytest.importorskip("starlette.applications")
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
import httpx  # noqa: E402


class TestClient:
    """A synchronous face over httpx's ASGI transport: every request goes through the app's
    ASGI interface (middleware included), as a server would send it."""

    __test__ = False

    def __init__(self, app: Any, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=self.client)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.get(path, headers=headers)

        return asyncio.run(send())


def starlette_app(limiter: Limiter, **options: Any) -> Any:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = starlette_applications.Starlette(routes=[Route("/", hello), Route("/health", hello)])
    app.add_middleware(ASGIRateLimit, limiter=limiter, **options)
    return app


def test_starlette_200s_turn_into_429s() -> None:
    clock = ManualClock()
    client = TestClient(starlette_app(Limiter("2/minute", clock=clock)))
    first = client.get("/")
    assert first.status_code == 200 and first.text == "hello"
    assert first.headers["ratelimit-policy"] == '"2-in-1min";q=2;w=60'
    assert first.headers["ratelimit"] == '"2-in-1min";r=1;t=0'
    assert client.get("/").status_code == 200
    denied = client.get("/")
    assert denied.status_code == 429
    assert denied.headers["retry-after"] == "30"
    assert denied.headers["content-type"] == "application/json"
    assert denied.json() == {"error": "rate_limited", "retry_after": 30}
    assert denied.headers["ratelimit"] == '"2-in-1min";r=0;t=30'
    clock.advance(30)
    assert client.get("/").status_code == 200


def test_key_cost_exempt_and_legacy_headers() -> None:
    clock = ManualClock()
    app = starlette_app(
        Limiter("10/minute", clock=clock),
        key=lambda scope: dict(scope["headers"]).get(b"x-api-key", b"anonymous"),
        cost=lambda scope: 5 if scope["path"] == "/" else 1,
        exempt=lambda scope: scope["path"] == "/health",
        header_style="legacy",
    )
    client = TestClient(app)
    assert client.get("/", headers={"x-api-key": "a"}).headers["x-ratelimit-remaining"] == "5"
    assert client.get("/", headers={"x-api-key": "a"}).status_code == 200
    assert client.get("/", headers={"x-api-key": "a"}).status_code == 429
    assert client.get("/", headers={"x-api-key": "b"}).status_code == 200
    health = client.get("/health", headers={"x-api-key": "a"})
    assert health.status_code == 200 and "x-ratelimit-remaining" not in health.headers


def test_fastapi_client_address_key() -> None:
    clock = ManualClock()
    app = fastapi.FastAPI()

    @app.get("/items/{item}")
    async def read(item: int) -> dict[str, int]:
        return {"item": item}

    app.add_middleware(ASGIRateLimit, limiter=Limiter("1/minute", clock=clock))
    first = TestClient(app, client=("2001:db8::1", 5000))
    assert first.get("/items/1").json() == {"item": 1}
    assert first.get("/items/1").status_code == 429
    same_prefix = TestClient(app, client=("2001:db8:0:1::99", 5000))
    assert same_prefix.get("/items/2").status_code == 429, "one /56 is one client"
    other = TestClient(app, client=("192.0.2.7", 5000))
    assert other.get("/items/3").status_code == 200


def test_table_full_answers_429() -> None:
    limiter = Limiter("1/hour", max_keys=1, clock=ManualClock())
    app = starlette_app(limiter, key=lambda scope: scope["query_string"])
    client = TestClient(app)
    statuses = [client.get(f"/?{index}").status_code for index in range(40)]
    assert 200 in statuses and 429 in statuses
    assert statuses.index(429) <= 16
    full = client.get("/?full")
    assert full.status_code == 429 and full.headers["retry-after"] == "1"
    with pytest.raises(TableFull):
        for index in range(40, 80):
            limiter.check(f"{index}".encode())


def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = ASGIRateLimit(app, Limiter("1/hour"))
    asyncio.run(middleware({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert seen == ["lifespan"]


def test_bad_middleware_options() -> None:
    from cellgate import InvalidArgument

    with pytest.raises(InvalidArgument):
        ASGIRateLimit(lambda *a: None, Limiter("1/s"), header_style="nope")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        WSGIRateLimit(lambda *a: [], Limiter("1/s"), ipv6_prefix=0)  # type: ignore[arg-type]


def test_flask_200s_turn_into_429s() -> None:
    clock = ManualClock()
    app = flask.Flask(__name__)

    @app.route("/")
    def index() -> str:
        return "hello"

    @app.route("/health")
    def health() -> str:
        return "ok"

    app.wsgi_app = WSGIRateLimit(  # type: ignore[method-assign]
        app.wsgi_app, Limiter("2/minute", clock=clock), exempt=lambda environ: environ["PATH_INFO"] == "/health"
    )
    client = app.test_client()
    first = client.get("/")
    assert first.status_code == 200 and first.get_data() == b"hello"
    assert first.headers["RateLimit"] == '"2-in-1min";r=1;t=0'
    assert client.get("/").status_code == 200
    denied = client.get("/")
    assert denied.status_code == 429
    assert denied.headers["Retry-After"] == "30"
    assert json.loads(denied.get_data()) == {"error": "rate_limited", "retry_after": 30}
    assert client.get("/health").status_code == 200
    other = client.get("/", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 200
    clock.advance(30)
    assert client.get("/").status_code == 200


def test_forwarded_for_keys() -> None:
    from cellgate import InvalidArgument, InvalidArgumentType
    from cellgate.asgi import forwarded_for_key as asgi_forwarded
    from cellgate.wsgi import forwarded_for_key as wsgi_forwarded

    clock = ManualClock()
    app = starlette_app(Limiter("1/minute", clock=clock), key=asgi_forwarded(trusted_hops=1))
    client = TestClient(app)
    assert client.get("/", headers={"x-forwarded-for": "spoofed, 192.0.2.1"}).status_code == 200
    assert client.get("/", headers={"x-forwarded-for": "other, 192.0.2.1"}).status_code == 429, (
        "the entry the trusted proxy appended decides, whatever the client wrote before it"
    )
    assert client.get("/", headers={"x-forwarded-for": "192.0.2.2"}).status_code == 200
    assert client.get("/").status_code == 200, "no header: the connection's address"
    assert client.get("/").status_code == 429

    two_hops = wsgi_forwarded(trusted_hops=2)
    assert two_hops({"HTTP_X_FORWARDED_FOR": "x, 192.0.2.9, 10.0.0.1", "REMOTE_ADDR": "10.0.0.2"}) == two_hops(
        {"HTTP_X_FORWARDED_FOR": "192.0.2.9, 10.0.0.7", "REMOTE_ADDR": "10.0.0.3"}
    )
    assert two_hops({"HTTP_X_FORWARDED_FOR": "10.0.0.1", "REMOTE_ADDR": "10.0.0.2"}) == two_hops(
        {"REMOTE_ADDR": "10.0.0.2"}
    ), "too short: the connection's address"
    for bad, error in [(0, InvalidArgument), (True, InvalidArgumentType), ("1", InvalidArgumentType)]:
        with pytest.raises(error) as info:
            asgi_forwarded(trusted_hops=bad)  # type: ignore[arg-type]
        assert info.value.argument == "trusted_hops"  # type: ignore[attr-defined]
