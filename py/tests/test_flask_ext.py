"""The Flask extension ``cellgate.flask.RateLimit`` on a real Flask app (its test client)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import cellgate
from cellgate import Decision, Denial, InvalidArgumentType, Limiter, ManualClock

flask = pytest.importorskip("flask")
from cellgate.flask import RateLimit  # noqa: E402

LOCAL = cellgate.client_key("127.0.0.1")


def make_app(**options: Any) -> tuple[Any, RateLimit, ManualClock]:
    clock = ManualClock()
    app = flask.Flask(__name__)

    @app.before_request
    def authenticate() -> None:
        # An authentication hook registered before init_app: keys can use what it sets.
        flask.g.user = flask.request.headers.get("X-User", "anonymous")

    rate_limit = RateLimit(limiter=Limiter("2/minute", clock=clock), **options)
    rate_limit.init_app(app)

    @app.get("/")
    def index() -> Any:
        decision: Decision | None = flask.g.get("rate_limit")
        return {"remaining": decision.remaining if decision is not None else None}

    @app.get("/health")
    @rate_limit.exempt
    def health() -> str:
        return "ok"

    @rate_limit.limit(Limiter("3/minute", clock=clock), key=lambda: f"login:{flask.g.user}", count="failed")
    @app.post("/login")
    def login() -> Any:
        if flask.request.args.get("password") == "hunter2":
            return "welcome"
        return "no", 401

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("the view failed")

    return app, rate_limit, clock


def test_default_limit_headers_429_and_exempt() -> None:
    app, _, clock = make_app()
    client = app.test_client()
    first = client.get("/")
    assert first.status_code == 200 and first.get_json() == {"remaining": 1}
    assert first.headers["RateLimit"] == '"2-in-1min";r=1;t=30'
    assert first.headers["RateLimit-Policy"] == '"2-in-1min";q=2;w=60'
    assert client.get("/").get_json() == {"remaining": 0}
    denied = client.get("/")
    assert denied.status_code == 429
    assert json.loads(denied.get_data()) == {"error": "rate_limited", "retry_after": 30}
    assert denied.headers["Retry-After"] == "30" and denied.headers["Content-Type"] == "application/json"
    assert denied.headers["RateLimit"] == '"2-in-1min";r=0;t=30'
    assert client.get("/missing").status_code == 429, "404s are limited by the default limit too"
    health = client.get("/health")
    assert health.status_code == 200 and "RateLimit" not in health.headers
    assert client.get("/", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 200
    clock.advance(30)
    assert client.get("/").status_code == 200


def test_per_route_limit_with_an_after_auth_key_counts_only_failed_logins() -> None:
    app, rate_limit, _ = make_app()
    route_limiter = rate_limit._routes[app.view_functions["login"]].limiter  # type: ignore[union-attr]
    client = app.test_client()
    for _ in range(5):
        good = client.post("/login?password=hunter2", headers={"X-User": "ann"})
        assert good.status_code == 200 and good.headers["RateLimit"] == '"3-in-1min";r=2;t=20'
        assert route_limiter.peek("login:ann", 0).remaining == 3, "a successful login costs nothing"
    for left in (2, 1, 0):
        assert client.post("/login?password=guess", headers={"X-User": "ann"}).status_code == 401
        assert route_limiter.peek("login:ann", 0).remaining == left
    denied = client.post("/login?password=hunter2", headers={"X-User": "ann"})
    assert denied.status_code == 429 and denied.headers["Retry-After"] == "20"
    assert client.post("/login?password=hunter2", headers={"X-User": "bob"}).status_code == 200, "per user"
    assert rate_limit.default is not None
    assert rate_limit.default.limiter.peek(LOCAL, 0).remaining == 2, "the route's limit replaces the default"


def test_default_key_after_auth_and_count_successful() -> None:
    app, rate_limit, _ = make_app(key=lambda: flask.g.user, count="successful")
    client = app.test_client()
    assert rate_limit.default is not None
    limiter = rate_limit.default.limiter
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for _ in range(3):
        assert client.get("/boom", headers={"X-User": "ann"}).status_code == 500
    assert limiter.peek("ann", 0).remaining == 2, "Flask's 500s do not count"
    assert client.get("/", headers={"X-User": "ann"}).get_json() == {"remaining": 1}
    assert limiter.peek("ann", 0).remaining == 1
    assert limiter.peek("anonymous", 0).remaining == 2


def test_on_denied_and_default_false() -> None:
    app, _, _ = make_app(
        default=False, on_denied=lambda request, decision: Denial(503, [("Retry-After", "5")], b"busy")
    )
    client = app.test_client()
    for _ in range(4):
        answer = client.get("/")
        assert answer.status_code == 200 and "RateLimit" not in answer.headers, "default=False: no default limit"
    for _ in range(3):
        client.post("/login", headers={"X-User": "ann"})
    denied = client.post("/login", headers={"X-User": "ann"})
    assert (denied.status_code, denied.get_data(), denied.headers["Retry-After"]) == (503, b"busy", "5")


def test_init_app_pattern_and_decision_in_flask_g() -> None:
    rate_limit = RateLimit(limiter=Limiter("1/minute", clock=ManualClock()))
    app = flask.Flask(__name__)
    rate_limit.init_app(app)
    assert app.extensions["cellgate"] is rate_limit

    @app.get("/")
    def index() -> Any:
        return {"limit": flask.g.rate_limit.limit}

    assert app.test_client().get("/").get_json() == {"limit": 1}
    assert app.test_client().get("/").status_code == 429


@pytest.mark.parametrize(
    ("option", "cellgate_name"),
    [("key_func", "key"), ("default_limits", "limiter"), ("deduct_when", "count_when"), ("storage_uri", "limiter")],
)
def test_flask_limiter_option_names_say_the_cellgate_name(option: str, cellgate_name: str) -> None:
    with pytest.raises(InvalidArgumentType) as info:
        RateLimit(**{option: None})
    assert str(info.value).startswith(f"{option}: is not an option of cellgate.flask.RateLimit; cellgate calls it {cellgate_name}")
    rate_limit = RateLimit(limiter=Limiter("1/s"))
    with pytest.raises(InvalidArgumentType, match=f"^{option}: is not an option of cellgate.flask.RateLimit.limit"):
        rate_limit.limit(**{option: None})


def test_bad_options() -> None:
    for options, argument in (
        ({"limiter": "1/s"}, "limiter"),
        ({"limiter": Limiter("1/s"), "count": "failures"}, "count"),
        ({"count": "failures"}, "count"),
        ({"default": "yes"}, "default"),
        ({"exempt": True}, "exempt"),
        ({"limiter": Limiter("1/s"), "cost": -1}, "cost"),
    ):
        with pytest.raises((InvalidArgumentType, cellgate.InvalidArgument)) as info:
            RateLimit(**options)
        assert info.value.argument == argument, options  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgumentType, match="^limiter: "):
        RateLimit().limit()
