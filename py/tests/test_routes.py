"""Per-route limits on Starlette and FastAPI (their TestClient): ``cellgate.asgi.limit`` (a
decorator answering 429 itself) and ``cellgate.asgi.limit_dependency`` (a FastAPI
dependency)."""

from __future__ import annotations

from typing import Any

import pytest

from cellgate import Decision, Denial, InvalidArgumentType, Limiter, ManualClock
from cellgate.asgi import RateLimitExceeded, limit, limit_dependency, rate_limit_exceeded_handler

fastapi = pytest.importorskip("fastapi")
from fastapi import Depends, FastAPI, HTTPException, Request, Response  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware.base import BaseHTTPMiddleware  # noqa: E402
from starlette.responses import JSONResponse, PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

BODY_20 = {"error": "rate_limited", "retry_after": 20}


def test_starlette_decorated_endpoints_have_their_own_limits() -> None:
    clock = ManualClock()

    @limit(Limiter("1/minute", clock=clock))
    async def strict(request: Request) -> PlainTextResponse:
        return PlainTextResponse("strict")

    @limit(Limiter("3/minute", clock=clock), cost=lambda request: int(request.query_params.get("cost", "1")))
    def loose(request: Request) -> PlainTextResponse:  # a sync endpoint
        return PlainTextResponse("loose")

    async def free(request: Request) -> PlainTextResponse:
        return PlainTextResponse("free")

    client = TestClient(Starlette(routes=[Route("/strict", strict), Route("/loose", loose), Route("/free", free)]))
    first = client.get("/strict")
    assert first.status_code == 200 and first.headers["ratelimit"] == '"1-in-1min";r=0;t=60'
    denied = client.get("/strict")
    assert denied.status_code == 429 and denied.json() == {"error": "rate_limited", "retry_after": 60}
    assert denied.headers["retry-after"] == "60" and denied.headers["content-type"] == "application/json"
    assert client.get("/loose?cost=2").headers["ratelimit"] == '"3-in-1min";r=1;t=20'
    assert client.get("/loose?cost=2").status_code == 429
    assert client.get("/loose").status_code == 200
    unlimited = client.get("/free")
    assert unlimited.status_code == 200 and "ratelimit" not in unlimited.headers


def test_fastapi_decorator_after_auth_key_count_mode_and_state() -> None:
    """The key comes from what an auth middleware put on the request (after-auth keys), only
    failed logins count, and the decision is in ``request.state.rate_limit``."""
    clock = ManualClock()
    limiter = Limiter("3/minute", clock=clock)
    app = FastAPI()

    class Auth(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: Any) -> Any:
            request.state.user = request.headers.get("x-user", "anonymous")
            return await call_next(request)

    app.add_middleware(Auth)

    @app.post("/login")
    @limit(limiter, key=lambda request: f"user:{request.state.user}", count="failed")
    async def login(request: Request, password: str = "") -> dict[str, Any]:
        if password != "hunter2":
            raise HTTPException(401, detail="wrong password")
        decision: Decision = request.state.rate_limit
        return {"welcome": request.state.user, "remaining": decision.remaining}

    client = TestClient(app)
    for _ in range(4):
        good = client.post("/login?password=hunter2", headers={"x-user": "ann"})
        assert good.status_code == 200 and good.json() == {"welcome": "ann", "remaining": 2}
        assert good.headers["ratelimit"] == '"3-in-1min";r=2;t=20', "headers on a plain-value answer"
        assert limiter.peek("user:ann", 0).remaining == 3, "a successful login is refunded"
    for left in (2, 1, 0):
        bad = client.post("/login?password=guess", headers={"x-user": "ann"})
        assert bad.status_code == 401 and bad.json() == {"detail": "wrong password"}
        assert limiter.peek("user:ann", 0).remaining == left
    denied = client.post("/login?password=hunter2", headers={"x-user": "ann"})
    assert denied.status_code == 429 and denied.json() == BODY_20
    assert denied.headers["retry-after"] == "20"
    assert client.post("/login?password=hunter2", headers={"x-user": "bob"}).status_code == 200
    # FastAPI still sees the endpoint's own parameters (the query parameter is validated).
    assert client.post("/login?password=hunter2", headers={"x-user": "bob"}).json()["welcome"] == "bob"


def test_fastapi_decorator_on_denied_and_unknown_options() -> None:
    app = FastAPI()

    @app.get("/")
    @limit(
        Limiter("1/minute", clock=ManualClock()),
        on_denied=lambda request, decision: Denial(503, [("Retry-After", "9")], b"busy"),
    )
    def index(request: Request) -> dict[str, str]:
        return {"ok": "yes"}

    client = TestClient(app)
    assert client.get("/").json() == {"ok": "yes"}
    denied = client.get("/")
    assert (denied.status_code, denied.content, denied.headers["retry-after"]) == (503, b"busy", "9")

    with pytest.raises(InvalidArgumentType, match="^key_func: is not an option of cellgate.asgi.limit; cellgate calls it key"):
        limit(Limiter("1/s"), key_func=lambda request: "k")
    with pytest.raises(InvalidArgumentType, match="^cost: "):
        limit(Limiter("1/s"), cost="1")  # type: ignore[arg-type]


def test_fastapi_dependency_answers_429_with_headers_not_500() -> None:
    clock = ManualClock()
    app = FastAPI()
    per_user = limit_dependency(Limiter("2/minute", clock=clock), key=lambda request: request.headers["x-user"])

    @app.get("/items", dependencies=[Depends(per_user)])
    async def items() -> list[int]:
        return [1, 2]

    @app.get("/me")
    async def me(decision: Decision = Depends(per_user)) -> dict[str, int]:
        return {"remaining": decision.remaining}

    client = TestClient(app)
    first = client.get("/items", headers={"x-user": "ann"})
    assert first.status_code == 200 and first.json() == [1, 2]
    assert first.headers["ratelimit"] == '"2-in-1min";r=1;t=30'
    assert client.get("/me", headers={"x-user": "ann"}).json() == {"remaining": 0}
    denied = client.get("/items", headers={"x-user": "ann"})
    assert denied.status_code == 429
    assert denied.json() == {"detail": {"error": "rate_limited", "retry_after": 30}}
    assert denied.headers["retry-after"] == "30" and denied.headers["ratelimit"] == '"2-in-1min";r=0;t=30'

    exact_app = FastAPI()
    exact_app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded_handler)
    exact_app.get("/items", dependencies=[Depends(per_user)])(items)
    exact = TestClient(exact_app).get("/items", headers={"x-user": "ann"})
    assert exact.status_code == 429 and exact.json() == {"error": "rate_limited", "retry_after": 30}
    assert exact.headers["content-type"] == "application/json" and exact.headers["retry-after"] == "30"

    with pytest.raises(InvalidArgumentType, match="^count: is not an option of cellgate.asgi.limit_dependency"):
        limit_dependency(Limiter("1/s"), count="failed")


def test_decorator_refuses_a_parameter_it_adds() -> None:
    from cellgate import InvalidArgument

    with pytest.raises(InvalidArgument, match="^cellgate_response: "):

        @limit(Limiter("1/s"))
        async def endpoint(request: Request, cellgate_response: Response) -> None: ...


def test_decorated_starlette_endpoint_returning_json() -> None:
    @limit(Limiter("2/minute", clock=ManualClock()), header_style="legacy")
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"remaining": request.state.rate_limit.remaining})

    client = TestClient(Starlette(routes=[Route("/", endpoint)]))
    answer = client.get("/")
    assert answer.json() == {"remaining": 1} and answer.headers["x-ratelimit-remaining"] == "1"
