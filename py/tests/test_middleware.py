"""ASGI middleware on real Starlette and FastAPI apps (through an ASGI client), WSGI
middleware on a real Flask app (through its test client)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import cellgate
from cellgate import Limiter, ManualClock
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
    assert first.headers["ratelimit"] == '"2-in-1min";r=1;t=30'
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
    assert full.status_code == 429, "a full table is a denial like any other"
    retry_after = full.headers["retry-after"]
    assert 1 <= int(retry_after) <= 3600, "until a slot of the key's windows can be reclaimed"
    assert full.content == f'{{"error":"rate_limited","retry_after":{retry_after}}}'.encode()
    assert all(limiter.check(f"{index}".encode()).reason == "table_full" for index in range(40, 80))


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
    assert first.headers["RateLimit"] == '"2-in-1min";r=1;t=30'
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


def noop_app(*args: Any) -> Any:
    return []


@pytest.mark.parametrize("middleware", [ASGIRateLimit, WSGIRateLimit])
@pytest.mark.parametrize(
    ("options", "argument", "error"),
    [
        ({"cost": -1}, "cost", "InvalidArgument"),
        ({"cost": float("nan")}, "cost", "InvalidArgument"),
        ({"cost": 1.5}, "cost", "InvalidArgument"),
        ({"cost": 2**64}, "cost", "InvalidArgument"),
        ({"cost": True}, "cost", "InvalidArgumentType"),
        ({"cost": "1"}, "cost", "InvalidArgumentType"),
        ({"key": "str"}, "key", "InvalidArgumentType"),
        ({"key": b"fixed"}, "key", "InvalidArgumentType"),
        ({"exempt": True}, "exempt", "InvalidArgumentType"),
        ({"header_style": None}, "header_style", "InvalidArgumentType"),
        ({"header_style": "nope"}, "header_style", "InvalidArgument"),
        ({"headers_on_success": "yes"}, "headers_on_success", "InvalidArgumentType"),
        ({"ipv6_prefix": 0}, "ipv6_prefix", "InvalidArgument"),
        ({"ipv6_prefix": "56"}, "ipv6_prefix", "InvalidArgumentType"),
        ({"limiter": "10/s"}, "limiter", "InvalidArgumentType"),
        ({"limiter": None}, "limiter", "InvalidArgumentType"),
        ({"app": None}, "app", "InvalidArgumentType"),
    ],
)
def test_middleware_arguments_are_checked_at_construction(
    middleware: Any, options: dict[str, Any], argument: str, error: str
) -> None:
    """A bad option fails when the middleware is made, as a typed error naming it, instead of
    a 500 on every request (or an AttributeError)."""
    kwargs: dict[str, Any] = {"app": noop_app, "limiter": Limiter("1/s"), **options}
    app, limiter = kwargs.pop("app"), kwargs.pop("limiter")
    with pytest.raises(Exception) as info:
        middleware(app, limiter, **kwargs)
    assert type(info.value) is getattr(cellgate, error), repr(info.value)
    assert info.value.argument == argument  # type: ignore[attr-defined]
    assert str(info.value).startswith(f"{argument}: ")


def test_good_middleware_options_are_accepted() -> None:
    for middleware in (ASGIRateLimit, WSGIRateLimit):
        for cost in (0, 3, 2.0, lambda request: 1):
            middleware(noop_app, Limiter("1/s"), cost=cost, key=lambda request: "k", exempt=None)
        middleware(noop_app, cellgate._cellgate.Limiter("1/s"), header_style="legacy_epoch", headers_on_success=False)


MISCONFIGURED = {"error": "rate_limit_misconfigured"}


def test_a_bad_cost_or_key_at_request_time_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    """A cost or key callable returning a value the limiter refuses: the request is not let
    through, the client gets a plain JSON 500 (no traceback), and the configuration error is
    logged once per middleware and argument, not per request."""
    reached: list[str] = []

    async def hello(request: Any) -> PlainTextResponse:
        reached.append("asgi")
        return PlainTextResponse("hello")

    app = starlette_applications.Starlette(routes=[Route("/", hello)])
    app.add_middleware(ASGIRateLimit, limiter=Limiter("10/minute"), cost=lambda scope: -1)
    client = TestClient(app)
    with caplog.at_level("ERROR", logger="cellgate"):
        for _ in range(3):
            answer = client.get("/")
            assert answer.status_code == 500 and answer.json() == MISCONFIGURED
    records = [record for record in caplog.records if record.name == "cellgate"]
    assert len(records) == 1 and "cost" in records[0].getMessage(), records
    assert records[0].exc_info is None, "no traceback in the log either"

    flask_app = flask.Flask(__name__)

    @flask_app.route("/")
    def index() -> str:
        reached.append("wsgi")
        return "hello"

    flask_app.wsgi_app = WSGIRateLimit(  # type: ignore[method-assign]
        flask_app.wsgi_app, Limiter("10/minute"), cost=lambda environ: float("nan"), key=lambda environ: 1.5
    )
    caplog.clear()
    with caplog.at_level("ERROR", logger="cellgate"):
        for _ in range(2):
            answer = flask_app.test_client().get("/")
            assert answer.status_code == 500 and json.loads(answer.get_data()) == MISCONFIGURED
    records = [record for record in caplog.records if record.name == "cellgate"]
    assert len(records) == 1, records
    assert reached == [], "no request reached the app"


def test_a_client_address_that_is_not_utf8_is_still_a_key() -> None:
    """A made-up client name holding a lone surrogate (a test client's, a Unix socket's) is
    keyed by its text like any other non-address, not a UnicodeEncodeError."""
    from cellgate.asgi import client_address_key as asgi_key
    from cellgate.wsgi import client_address_key as wsgi_key

    assert asgi_key({"client": ("peer\ud800", 1)}) == b"peer\xed\xa0\x80"
    assert wsgi_key({"REMOTE_ADDR": "peer\ud800"}) == b"peer\xed\xa0\x80"


@pytest.mark.parametrize("middleware", [ASGIRateLimit, WSGIRateLimit])
def test_per_quota_header_styles_need_header_name_quota_names(middleware: Any) -> None:
    with pytest.raises(cellgate.InvalidArgument) as info:
        middleware(noop_app, Limiter([cellgate.Quota.per_minute(2, name="per user")]), header_style="openai")
    assert info.value.argument == "header_style"
    assert str(info.value).startswith("header_style: quota 0 is named \"per user\"")
    assert "cannot be part of a header name" in str(info.value)
    middleware(noop_app, Limiter("2/minute; 100/day"), header_style="openai")
    middleware(noop_app, Limiter([cellgate.Quota.per_minute(2, name="requests")]), header_style="anthropic")


def test_asgi_openai_and_anthropic_header_styles() -> None:
    for style, limit, remaining, reset in (
        ("openai", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
        ("anthropic", "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining", None),
    ):
        limiter = Limiter([cellgate.Quota.per_minute(2, name="requests")], clock=ManualClock())
        client = TestClient(starlette_app(limiter, header_style=style))
        first = client.get("/")
        assert first.status_code == 200
        assert first.headers[limit] == "2" and first.headers[remaining] == "1"
        if reset is not None:
            assert first.headers[reset] == "30s"
        client.get("/")
        denied = client.get("/")
        assert denied.status_code == 429 and denied.headers[remaining] == "0"
        assert denied.headers["retry-after"] == "30" and denied.headers["retry-after-ms"] == "30000"
        assert denied.content == b'{"error":"rate_limited","retry_after":30}'
