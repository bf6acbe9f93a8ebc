"""Count modes, the denial handler, the decision given to the app and unknown options of the
ASGI middleware (Starlette's TestClient) and the WSGI middleware (Flask's test client)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Iterator

import pytest

import cellgate
from cellgate import Decision, Denial, InvalidArgument, InvalidArgumentType, Limiter, ManualClock
from cellgate.asgi import RateLimitMiddleware as ASGIRateLimit
from cellgate.wsgi import RateLimitMiddleware as WSGIRateLimit

flask = pytest.importorskip("flask")
starlette_applications = pytest.importorskip("starlette.applications")
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

PASSWORD = "hunter2"


def login_app(limiter: Limiter, **options: Any) -> Any:
    """A Starlette app whose ``/login`` answers 200 for the right password and 401 otherwise,
    ``/boom`` raises, and ``/state`` shows the decision the middleware left for it."""

    async def login(request: Request) -> Response:
        if request.query_params.get("password") == PASSWORD:
            return PlainTextResponse("welcome")
        return PlainTextResponse("no", status_code=401)

    async def boom(request: Request) -> Response:
        raise RuntimeError("the app failed")

    async def state(request: Request) -> Response:
        decision: Decision = request.state.rate_limit
        return JSONResponse({"allowed": decision.allowed, "remaining": decision.remaining, "limit": decision.limit})

    app = starlette_applications.Starlette(
        routes=[Route("/login", login, methods=["GET", "POST"]), Route("/boom", boom), Route("/state", state)]
    )
    app.add_middleware(ASGIRateLimit, limiter=limiter, **options)
    return app


LOCAL = cellgate.client_key("127.0.0.1")
"""The WSGI middleware's key of Werkzeug's test client (``REMOTE_ADDR`` through core's client key)."""
DOC = cellgate.client_key("192.0.2.1")


def remaining(limiter: Limiter, key: cellgate.Key) -> int:
    return limiter.peek(key, 0).remaining


def test_asgi_failed_logins_count_successful_ones_do_not() -> None:
    limiter = Limiter("3/minute", clock=ManualClock())
    client = TestClient(login_app(limiter, count="failed"))
    for _ in range(5):
        good = client.post(f"/login?password={PASSWORD}")
        assert good.status_code == 200 and good.headers["ratelimit"] == '"3-in-1min";r=2;t=20'
        assert remaining(limiter, "testclient") == 3, "a successful login is refunded"
    for left in (2, 1, 0):
        bad = client.post("/login?password=guess")
        assert bad.status_code == 401 and bad.headers["ratelimit"].startswith(f'"3-in-1min";r={left};')
        assert remaining(limiter, "testclient") == left
    denied = client.post(f"/login?password={PASSWORD}")
    assert denied.status_code == 429, "three failures: even the right password waits"
    assert denied.json() == {"error": "rate_limited", "retry_after": 20}
    assert denied.headers["retry-after"] == "20"


def test_asgi_count_successful_and_count_when() -> None:
    limiter = Limiter("2/minute", clock=ManualClock())
    client = TestClient(login_app(limiter, count="successful"))
    for _ in range(4):
        assert client.post("/login?password=guess").status_code == 401
    assert remaining(limiter, "testclient") == 2, "failures are refunded"
    assert client.post(f"/login?password={PASSWORD}").status_code == 200
    assert remaining(limiter, "testclient") == 1

    seen: list[int] = []

    def only_401(status: int) -> bool:
        seen.append(status)
        return status == 401

    limiter = Limiter("2/minute", clock=ManualClock())
    client = TestClient(login_app(limiter, count_when=only_401))
    assert client.post(f"/login?password={PASSWORD}").status_code == 200
    assert client.get("/state").status_code == 200
    assert remaining(limiter, "testclient") == 2
    assert client.post("/login?password=guess").status_code == 401
    assert remaining(limiter, "testclient") == 1
    assert seen == [200, 200, 401], "the predicate is given each response's status, once"


def test_asgi_an_app_that_raised_counts_as_a_500() -> None:
    for count, left in (("successful", 2), ("failed", 1)):
        limiter = Limiter("2/minute", clock=ManualClock())
        client = TestClient(login_app(limiter, count=count), raise_server_exceptions=False)
        assert client.get("/boom").status_code == 500
        assert remaining(limiter, "testclient") == left, count


def test_asgi_decision_is_in_request_state() -> None:
    limiter = Limiter("2/minute", clock=ManualClock())
    client = TestClient(login_app(limiter))
    assert client.get("/state").json() == {"allowed": True, "remaining": 1, "limit": 2}
    assert client.get("/state").json() == {"allowed": True, "remaining": 0, "limit": 2}
    assert client.get("/state").status_code == 429


def test_asgi_on_denied_sync_and_async() -> None:
    def sync_handler(scope: Any, decision: Decision) -> Denial:
        assert scope["path"] == "/login" and not decision.allowed
        return Denial(503, [("Retry-After", "7"), ("Content-Type", "text/plain")], b"slow down")

    async def async_handler(scope: Any, decision: Decision) -> Denial:
        default = Denial.default(decision, "legacy")
        return dataclasses.replace(default, status=418)

    limiter = Limiter("1/minute", clock=ManualClock())
    client = TestClient(login_app(limiter, on_denied=sync_handler))
    assert client.get("/login").status_code == 401
    denied = client.get("/login")
    assert (denied.status_code, denied.text, denied.headers["retry-after"]) == (503, "slow down", "7")
    assert denied.headers["content-length"] == "9"
    assert "ratelimit" not in denied.headers, "the handler's headers replace the default ones"

    limiter = Limiter("1/minute", clock=ManualClock())
    client = TestClient(login_app(limiter, on_denied=async_handler))
    client.get("/login")
    denied = client.get("/login")
    assert denied.status_code == 418
    assert denied.headers["x-ratelimit-remaining"] == "0" and denied.headers["retry-after"] == "60"
    assert denied.json() == {"error": "rate_limited", "retry_after": 60}


def test_on_denied_returning_something_else_is_a_type_error() -> None:
    limiter = Limiter("1/minute", clock=ManualClock())
    client = TestClient(login_app(limiter, on_denied=lambda scope, decision: (429, b"")))
    client.get("/login")
    with pytest.raises(InvalidArgumentType, match="^on_denied: must return a cellgate.Denial, not tuple"):
        client.get("/login")


@pytest.mark.parametrize("middleware", [ASGIRateLimit, WSGIRateLimit])
@pytest.mark.parametrize(
    ("option", "cellgate_name"),
    [
        ("key_func", "key"),
        ("default_limits", "limiter"),
        ("deduct_when", "count_when"),
        ("exempt_when", "exempt"),
        ("headers_enabled", "headers_on_success"),
        ("on_breach", "on_exceeded"),
        ("request_filter", "exempt"),
        ("exempt_ips", "allow_list"),
        ("storage_uri", "limiter"),
        ("rate", "limiter"),
    ],
)
def test_foreign_option_names_say_the_cellgate_name(middleware: Any, option: str, cellgate_name: str) -> None:
    """A half-migrated Flask-Limiter / slowapi / django-ratelimit configuration fails at
    startup, naming the option and the cellgate one, instead of running with defaults."""
    with pytest.raises(TypeError) as info:
        middleware(lambda *a: [], Limiter("1/s"), **{option: None})
    assert type(info.value) is InvalidArgumentType
    assert info.value.argument == option  # type: ignore[attr-defined]
    message = str(info.value)
    assert message.startswith(f"{option}: is not an option of cellgate.")
    assert f"cellgate calls it {cellgate_name}" in message


@pytest.mark.parametrize("middleware", [ASGIRateLimit, WSGIRateLimit])
def test_unknown_and_bad_count_options(middleware: Any) -> None:
    with pytest.raises(InvalidArgumentType, match="^hedaers_on_success: is not an option of cellgate") as info:
        middleware(lambda *a: [], Limiter("1/s"), hedaers_on_success=False)
    assert "calls it" not in str(info.value)
    for options, error, argument in (
        ({"count": "failures"}, InvalidArgument, "count"),
        ({"count": 1}, InvalidArgumentType, "count"),
        ({"count_when": 400}, InvalidArgumentType, "count_when"),
        ({"count": "failed", "count_when": lambda status: True}, InvalidArgument, "count_when"),
        ({"on_denied": 429}, InvalidArgumentType, "on_denied"),
    ):
        with pytest.raises(error) as raised:
            middleware(lambda *a: [], Limiter("1/s"), **options)
        assert type(raised.value) is error and raised.value.argument == argument  # type: ignore[attr-defined]
    for count in ("all", "failed", "successful"):
        middleware(lambda *a: [], Limiter("1/s"), count=count)


def flask_login_app(limiter: Limiter, **options: Any) -> Any:
    app = flask.Flask(__name__)

    @app.post("/login")
    def login() -> Any:
        if flask.request.args.get("password") == PASSWORD:
            return "welcome"
        return "no", 401

    @app.get("/state")
    def state() -> Any:
        decision: Decision = flask.request.environ["cellgate.decision"]
        return {"allowed": decision.allowed, "remaining": decision.remaining}

    @app.get("/stream")
    def stream() -> Any:
        def chunks() -> Iterator[str]:
            yield "a"
            yield "b"

        return flask.Response(chunks(), status=int(flask.request.args.get("status", "200")))

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("the app failed")

    app.wsgi_app = WSGIRateLimit(app.wsgi_app, limiter, **options)  # type: ignore[method-assign]
    return app


def test_wsgi_failed_logins_count_successful_ones_do_not() -> None:
    limiter = Limiter("3/minute", clock=ManualClock())
    client = flask_login_app(limiter, count="failed").test_client()
    for _ in range(5):
        good = client.post(f"/login?password={PASSWORD}")
        assert good.status_code == 200 and good.get_data() == b"welcome"
        assert good.headers["RateLimit"] == '"3-in-1min";r=2;t=20'
        assert remaining(limiter, LOCAL) == 3
    for left in (2, 1, 0):
        assert client.post("/login?password=guess").status_code == 401
        assert remaining(limiter, LOCAL) == left
    denied = client.post(f"/login?password={PASSWORD}")
    assert denied.status_code == 429 and json.loads(denied.get_data()) == {"error": "rate_limited", "retry_after": 20}


def test_wsgi_streamed_bodies_settle_after_the_body_and_errors_count_as_500() -> None:
    limiter = Limiter("2/minute", clock=ManualClock())
    app = flask_login_app(limiter, count="successful")
    client = app.test_client()
    assert client.get("/stream?status=404").get_data() == b"ab"
    assert remaining(limiter, LOCAL) == 2
    assert client.get("/stream").get_data() == b"ab"
    assert remaining(limiter, LOCAL) == 1
    app.config["PROPAGATE_EXCEPTIONS"] = False
    boom = client.get("/boom")
    assert boom.status_code == 500
    boom.get_data()  # the refund comes once the body has been sent, as a server sends it
    assert remaining(limiter, LOCAL) == 1, "Flask answered 500: refunded"

    raising = WSGIRateLimit(_raising_app, Limiter("2/minute", clock=ManualClock()), count="successful")
    with pytest.raises(RuntimeError):
        raising({"REMOTE_ADDR": "192.0.2.1"}, lambda status, headers, exc_info=None: None)
    assert remaining(raising.limiter, DOC) == 2, "an app that raised counts as a 500"

    failed = WSGIRateLimit(_raising_app, Limiter("2/minute", clock=ManualClock()), count="failed")
    with pytest.raises(RuntimeError):
        failed({"REMOTE_ADDR": "192.0.2.1"}, lambda status, headers, exc_info=None: None)
    assert remaining(failed.limiter, DOC) == 1


def _raising_app(environ: Any, start_response: Callable[..., Any]) -> Any:
    raise RuntimeError("the app failed")


def test_wsgi_settles_once_when_closed_before_the_end() -> None:
    def app(environ: Any, start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"a", b"b", b"c"])

    limiter = Limiter("5/minute", clock=ManualClock())
    middleware = WSGIRateLimit(app, limiter, count="failed")
    body = middleware({"REMOTE_ADDR": "192.0.2.1"}, lambda status, headers, exc_info=None: None)
    iterator = iter(body)
    assert next(iterator) == b"a"
    body.close()  # type: ignore[attr-defined]
    assert remaining(limiter, DOC) == 5
    assert list(iterator) == [b"b", b"c"]
    assert remaining(limiter, DOC) == 5, "refunded once, not twice"
    assert limiter.check(DOC, 5).allowed


def test_wsgi_decision_in_environ_and_on_denied() -> None:
    limiter = Limiter("2/minute", clock=ManualClock())
    client = flask_login_app(
        limiter, on_denied=lambda environ, decision: Denial(403, [("X-Why", decision.reason)], b"go away")
    ).test_client()
    assert client.get("/state").get_json() == {"allowed": True, "remaining": 1}
    assert client.get("/state").get_json() == {"allowed": True, "remaining": 0}
    denied = client.get("/state")
    assert denied.status == "403 Forbidden"
    assert denied.get_data() == b"go away" and denied.headers["X-Why"] == "limit"
    assert denied.headers["Content-Length"] == "7"


def test_denial_default_is_the_middlewares_429() -> None:
    limiter = Limiter("1/minute", clock=ManualClock())
    limiter.check("k")
    decision = limiter.check("k")
    default = Denial.default(decision)
    assert default.status == 429
    assert default.body == b'{"error":"rate_limited","retry_after":60}'
    assert ("Retry-After", "60") in default.headers and ("Content-Type", "application/json") in default.headers
    assert cellgate.Denial is Denial
