"""The options that choose what a request is limited by (issue 16), on the ASGI middleware
(a real Starlette app through httpx's ASGI transport) and the WSGI middleware (a real Flask
app through its test client): a limiter per request, ``allow_list``, ``methods`` and
``on_exceeded``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from cellgate import InvalidArgument, InvalidArgumentType, Limiter, ManualClock
from cellgate.asgi import RateLimitMiddleware as ASGIRateLimit
from cellgate.wsgi import RateLimitMiddleware as WSGIRateLimit

flask = pytest.importorskip("flask")
starlette_applications = pytest.importorskip("starlette.applications")
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
import httpx  # noqa: E402


class AsgiClient:
    __test__ = False

    def __init__(self, app: Any, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client

    def request(self, method: str, path: str = "/", headers: dict[str, str] | None = None) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=self.client)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, headers=headers)

        return asyncio.run(send())

    def status(self, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None) -> int:
        return self.request(method, path, headers).status_code


class WsgiClient:
    __test__ = False

    def __init__(self, app: Any, client: str = "127.0.0.1") -> None:
        self.client = app.test_client()
        self.address = client

    def request(self, method: str, path: str = "/", headers: dict[str, str] | None = None) -> Any:
        return self.client.open(path, method=method, headers=headers, environ_base={"REMOTE_ADDR": self.address})

    def status(self, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None) -> int:
        return int(self.request(method, path, headers).status_code)


def asgi_client(address: str = "127.0.0.1", **options: Any) -> AsgiClient:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = starlette_applications.Starlette(routes=[Route("/", hello, methods=["GET", "POST", "HEAD"])])
    app.add_middleware(ASGIRateLimit, **options)
    return AsgiClient(app, (address, 50000))


def wsgi_client(address: str = "127.0.0.1", **options: Any) -> WsgiClient:
    app = flask.Flask(__name__)

    @app.route("/", methods=["GET", "POST"])
    def hello() -> str:
        return "hello"

    app.wsgi_app = WSGIRateLimit(app.wsgi_app, **options)  # type: ignore[method-assign]
    return WsgiClient(app, address)


KINDS = ["asgi", "wsgi"]


def client_of(kind: str, address: str = "127.0.0.1", **options: Any) -> Any:
    return (asgi_client if kind == "asgi" else wsgi_client)(address, **options)


def header_of(kind: str, name: str) -> Any:
    if kind == "asgi":
        return lambda scope: dict(scope["headers"]).get(name.lower().encode(), b"").decode()
    return lambda environ: environ.get("HTTP_" + name.upper().replace("-", "_"), "")


@pytest.mark.parametrize("kind", KINDS)
def test_a_limiter_per_request_two_plans(kind: str) -> None:
    clock = ManualClock()
    plans = {"free": Limiter("1/minute", clock=clock), "pro": Limiter("3/minute", clock=clock)}
    plan = header_of(kind, "x-plan")
    client = client_of(kind, limiter=lambda request: plans[plan(request)], key=header_of(kind, "x-user"))
    free = {"x-plan": "free", "x-user": "ann"}
    pro = {"x-plan": "pro", "x-user": "bob"}
    assert [client.status(headers=free) for _ in range(2)] == [200, 429]
    assert [client.status(headers=pro) for _ in range(4)] == [200, 200, 200, 429]
    assert client.request("GET", headers=pro).headers["ratelimit-policy"] == '"3-in-1min";q=3;w=60'


def test_an_async_limiter_callable_in_asgi() -> None:
    limiter = Limiter("1/minute", clock=ManualClock())

    async def choose(scope: Any) -> Limiter:
        await asyncio.sleep(0)
        return limiter

    client = asgi_client(limiter=choose)
    assert [client.status() for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("kind", KINDS)
def test_a_limiter_callable_returning_no_limiter_is_a_logged_500(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    client = client_of(kind, limiter=lambda request: "100/minute")
    with caplog.at_level(logging.ERROR, logger="cellgate"):
        answers = [client.request("GET") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [500, 500, 500]
    body = answers[0].text if kind == "asgi" else answers[0].get_data(as_text=True)
    assert body == '{"error":"rate_limit_misconfigured"}'
    logged = [record for record in caplog.records if record.name == "cellgate"]
    assert len(logged) == 1 and "limiter" in logged[0].getMessage()


@pytest.mark.parametrize("kind", KINDS)
def test_allow_list_ip_entries(kind: str) -> None:
    clock = ManualClock()
    allow = ["2001:db8::1", "192.0.2.9"]
    for address, allowed in (("2001:db8:0:ff::7", True), ("192.0.2.9", True), ("192.0.2.10", False)):
        client = client_of(kind, address, limiter=Limiter("1/minute", clock=clock), allow_list=allow)
        statuses = [client.status() for _ in range(3)]
        assert statuses == ([200, 200, 200] if allowed else [200, 429, 429]), address
        answer = client.request("GET")
        assert ("ratelimit" in answer.headers) is (not allowed), "allowed requests get no headers"


@pytest.mark.parametrize("kind", KINDS)
def test_allow_list_key_entries(kind: str) -> None:
    limiter = Limiter("1/minute", clock=ManualClock())
    client = client_of(kind, limiter=limiter, key=header_of(kind, "x-api-key"), allow_list=[b"internal", "ops"])
    for key in ("internal", "ops"):
        assert [client.status(headers={"x-api-key": key}) for _ in range(3)] == [200, 200, 200], key
    assert [client.status(headers={"x-api-key": "other"}) for _ in range(2)] == [200, 429]
    assert limiter.peek("internal").remaining == 1, "an allowed key is never charged"


@pytest.mark.parametrize("kind", KINDS)
def test_methods(kind: str) -> None:
    client = client_of(kind, limiter=Limiter("1/minute", clock=ManualClock()), methods=["post"])
    assert [client.status("GET") for _ in range(3)] == [200, 200, 200]
    assert "ratelimit" not in client.request("GET").headers
    assert [client.status("POST") for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("kind", KINDS)
def test_on_exceeded_is_called_once_per_denial_and_its_errors_are_logged(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def on_exceeded(request: Any, decision: Any) -> None:
        assert not decision.allowed
        seen.append(decision.remaining)
        raise RuntimeError("metrics are down")

    client = client_of(kind, limiter=Limiter("1/minute", clock=ManualClock()), on_exceeded=on_exceeded)
    with caplog.at_level(logging.ERROR, logger="cellgate"):
        assert [client.status() for _ in range(3)] == [200, 429, 429]
    assert seen == [0, 0]
    errors = [record for record in caplog.records if "on_exceeded raised" in record.getMessage()]
    assert len(errors) == 2 and errors[0].exc_info is not None


def test_async_on_exceeded_in_asgi() -> None:
    seen: list[bool] = []

    async def on_exceeded(scope: Any, decision: Any) -> None:
        seen.append(decision.allowed)

    client = asgi_client(limiter=Limiter("1/minute", clock=ManualClock()), on_exceeded=on_exceeded)
    assert [client.status() for _ in range(2)] == [200, 429]
    assert seen == [False]


@pytest.mark.parametrize("middleware", [ASGIRateLimit, WSGIRateLimit])
def test_bad_options_are_typed_errors_naming_them(middleware: Any) -> None:
    def app(*args: Any) -> Any:
        return None

    limiter = Limiter("1/second")
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"allow_list": "127.0.0.1"}, InvalidArgumentType, "allow_list"),
        ({"allow_list": [1]}, InvalidArgumentType, "allow_list"),
        ({"methods": "GET"}, InvalidArgumentType, "methods"),
        ({"methods": ["GET", 1]}, InvalidArgumentType, "methods"),
        ({"methods": ["GE T"]}, InvalidArgument, "methods"),
        ({"methods": []}, InvalidArgument, "methods"),
        ({"on_exceeded": 3}, InvalidArgumentType, "on_exceeded"),
        ({"request_filter": None}, InvalidArgumentType, "request_filter"),
    ]
    for options, error, argument in cases:
        with pytest.raises(error) as raised:
            middleware(app, limiter, **options)
        assert getattr(raised.value, "argument", None) == argument, options
    with pytest.raises(InvalidArgumentType, match="allow_list"):
        middleware(app, limiter, request_filter=None)
    with pytest.raises(InvalidArgumentType) as raised:
        middleware(app, "100/minute")
    assert getattr(raised.value, "argument", None) == "limiter"


def flask_ext_client(address: str = "127.0.0.1", route: dict[str, Any] | None = None, **options: Any) -> WsgiClient:
    from cellgate.flask import RateLimit

    app = flask.Flask(__name__)
    ext = RateLimit(app, **options)

    @app.route("/", methods=["GET", "POST"])
    def hello() -> str:
        return "hello"

    if route is not None:

        @app.route("/route", methods=["GET", "POST"])
        @ext.limit(**route)
        def routed() -> str:
            return "routed"

    return WsgiClient(app, address)


def test_flask_extension_per_request_limiter_allow_list_methods_on_exceeded(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    plans = {"free": Limiter("1/minute", clock=clock), "pro": Limiter("2/minute", clock=clock)}
    seen: list[str] = []

    def on_exceeded(request: Any, decision: Any) -> None:
        seen.append(request.headers["x-user"])
        raise ValueError("hook failed")

    client = flask_ext_client(
        limiter=lambda request: plans[request.headers.get("x-plan", "free")],
        key=lambda: flask.request.headers.get("x-user", ""),
        allow_list=["ops"],
        methods=["GET"],
        on_exceeded=on_exceeded,
    )
    with caplog.at_level(logging.ERROR, logger="cellgate"):
        assert [client.status(headers={"x-user": "ann"}) for _ in range(2)] == [200, 429]
        assert [client.status(headers={"x-user": "bob", "x-plan": "pro"}) for _ in range(3)] == [200, 200, 429]
    assert [client.status(headers={"x-user": "ops"}) for _ in range(3)] == [200, 200, 200]
    assert "ratelimit" not in client.request("GET", headers={"x-user": "ops"}).headers
    assert [client.status("POST", headers={"x-user": "ann"}) for _ in range(2)] == [200, 200], "POST is not limited"
    assert seen == ["ann", "bob"]
    assert len([r for r in caplog.records if "on_exceeded raised" in r.getMessage()]) == 2


def test_flask_extension_ip_allow_list_and_route_methods() -> None:
    clock = ManualClock()
    allowed = flask_ext_client("2001:db8::5", limiter=Limiter("1/minute", clock=clock), allow_list=["2001:db8::1"])
    assert [allowed.status() for _ in range(3)] == [200, 200, 200]
    other = flask_ext_client("2001:db9::5", limiter=Limiter("1/minute", clock=clock), allow_list=["2001:db8::1"])
    assert [other.status() for _ in range(2)] == [200, 429]
    routed = flask_ext_client(default=False, limiter=Limiter("1/minute", clock=clock), route={"methods": ["POST"]})
    assert [routed.status("GET", "/route") for _ in range(2)] == [200, 200]
    assert [routed.status("POST", "/route") for _ in range(2)] == [200, 429]


def test_flask_extension_misconfigured_limiter_and_bad_options(caplog: pytest.LogCaptureFixture) -> None:
    from cellgate.flask import RateLimit

    client = flask_ext_client(limiter=lambda request: None)
    with caplog.at_level(logging.ERROR, logger="cellgate"):
        assert [client.status() for _ in range(2)] == [500, 500]
    assert len([r for r in caplog.records if r.name == "cellgate"]) == 1
    for options, argument in (({"allow_list": 5}, "allow_list"), ({"methods": "GET"}, "methods"), ({"on_exceeded": 1}, "on_exceeded")):
        with pytest.raises(InvalidArgumentType) as raised:
            RateLimit(limiter=Limiter("1/s"), **options)
        assert getattr(raised.value, "argument", None) == argument


def test_per_route_limit_and_dependency_allow_list() -> None:
    fastapi = pytest.importorskip("fastapi")
    from cellgate.asgi import limit, limit_dependency

    clock = ManualClock()
    app = fastapi.FastAPI()

    @app.get("/route")
    @limit(Limiter("1/minute", clock=clock), allow_list=["192.0.2.1", "2001:db8::1"])
    async def route(request: Request) -> dict[str, str]:
        return {"ok": "route"}

    seen: list[Any] = []

    async def record(decision: Any = fastapi.Depends(limit_dependency(Limiter("1/minute", clock=clock), allow_list=["192.0.2.1"]))) -> None:
        seen.append(decision)

    @app.get("/dep", dependencies=[fastapi.Depends(record)])
    async def dep() -> dict[str, str]:
        return {"ok": "dep"}

    for address in ("192.0.2.1", "2001:db8::ff"):
        client = AsgiClient(app, (address, 5000))
        assert [client.status("GET", "/route") for _ in range(3)] == [200, 200, 200], address
        assert "ratelimit" not in client.request("GET", "/route").headers
    other = AsgiClient(app, ("192.0.2.2", 5000))
    assert [other.status("GET", "/route") for _ in range(2)] == [200, 429]
    listed = AsgiClient(app, ("192.0.2.1", 5000))
    assert [listed.status("GET", "/dep") for _ in range(3)] == [200, 200, 200]
    assert seen == [None, None, None]
    assert [other.status("GET", "/dep") for _ in range(2)] == [200, 429]
