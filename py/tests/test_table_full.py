"""A full keyed table is a decision, never an exception (core's ``OnFull``): a flood of
100,000 new keys into ``max_keys=1000`` under ``1/hour`` gets denials with
``reason == "table_full"`` and a ``Retry-After``, through the API and through the ASGI and
WSGI middleware, and the exhausted key stays denied."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

import cellgate
from cellgate import Decision, InvalidArgument, InvalidArgumentType, Limiter, ManualClock, Policy
from cellgate.asgi import RateLimitMiddleware as ASGIRateLimit
from cellgate.wsgi import RateLimitMiddleware as WSGIRateLimit

FLOOD = 100_000
HOUR_S = 3600


def test_the_table_full_exception_is_gone() -> None:
    assert not hasattr(cellgate, "TableFull"), "nothing raises it: a full table is a decision"


def test_a_key_flood_gets_decisions_and_the_exhausted_key_stays_denied() -> None:
    limiter = Limiter("1/hour", max_keys=1000, clock=ManualClock())
    assert limiter.on_full == "deny"
    assert limiter.check("victim")
    assert not limiter.check("victim")
    reasons: Counter[str] = Counter()
    first_full = None
    for index in range(FLOOD):
        decision = limiter.check(index)
        assert isinstance(decision, Decision)
        reasons[decision.reason] += 1
        if decision.reason == "table_full":
            assert not decision.allowed
            if first_full is None:
                first_full = decision
        else:
            assert decision.reason == "limit" and decision.allowed, decision
    assert reasons["table_full"] >= FLOOD - 2000, reasons
    assert 900 <= reasons["limit"] <= 2000, reasons
    assert first_full is not None
    # Retry-After: until a slot of the key's windows can be reclaimed (a 1/hour key's bucket
    # is full again within the hour).
    assert 0 < first_full.retry_after <= HOUR_S
    headers = dict(first_full.headers())
    assert 1 <= int(headers["Retry-After"]) <= HOUR_S
    assert first_full.error_body() == f'{{"error":"rate_limited","retry_after":{headers["Retry-After"]}}}'.encode()
    victim = limiter.check("victim")
    assert not victim and victim.reason == "limit", "a flood of new keys never resets a live key"
    stats = limiter.stats()
    assert len(stats) == 1 and stats[0]["rejected_full"] == reasons["table_full"]
    assert stats[0]["admitted_untracked"] == 0


def test_allow_untracked_admits_the_flood_unstored_and_keeps_the_victim_denied() -> None:
    limiter = Limiter("1/hour", max_keys=1000, on_full="allow_untracked", clock=ManualClock())
    assert limiter.on_full == "allow_untracked"
    assert limiter.check("victim") and not limiter.check("victim")
    reasons = Counter(limiter.check(index).reason for index in range(FLOOD))
    assert reasons["untracked"] >= FLOOD - 2000 and set(reasons) == {"limit", "untracked"}, reasons
    untracked = limiter.check("one more new key")
    assert untracked.allowed and untracked.reason == "untracked"
    assert untracked.remaining == 0, "as a fresh 1/hour bucket after its one admission"
    assert not limiter.check("victim")
    assert limiter.stats()[0]["admitted_untracked"] == reasons["untracked"] + 1


def test_a_policy_full_table_is_a_decision_too() -> None:
    policy = Policy({"requests": "1/hour", "tokens": "100/hour"}, max_keys=12, clock=ManualClock())
    reasons = Counter(policy.check(index, requests=1, tokens=1).reason for index in range(200))
    assert reasons["table_full"] > 150, reasons
    untracked = Policy({"requests": "1/hour"}, max_keys=12, on_full="allow_untracked", clock=ManualClock())
    assert {untracked.check(index).reason for index in range(200)} == {"limit", "untracked"}


def test_on_full_is_checked() -> None:
    with pytest.raises(InvalidArgument) as info:
        Limiter("1/s", on_full="evict")
    assert info.value.argument == "on_full"
    with pytest.raises(InvalidArgumentType) as type_info:
        Policy({"a": "1/s"}, on_full=None)  # type: ignore[arg-type]
    assert type_info.value.argument == "on_full"


async def _asgi_status(app: Any, key: bytes) -> int:
    """One request through the ASGI interface, as a server sends it; returns the status."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": key,
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    return int(sent[0]["status"])


def test_asgi_middleware_answers_a_flood_with_429s_like_any_denial() -> None:
    import httpx

    starlette_applications = pytest.importorskip("starlette.applications")
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    limiter = Limiter("1/hour", max_keys=1000, clock=ManualClock())
    app = starlette_applications.Starlette(routes=[Route("/", hello)])
    app.add_middleware(ASGIRateLimit, limiter=limiter, key=lambda scope: scope["query_string"])

    async def run() -> tuple[Counter[int], list[httpx.Response]]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            victim = [await client.get("/?victim"), await client.get("/?victim")]
            # The flood, straight through the app's ASGI interface (httpx would take minutes
            # for 100,000 requests), then a real client again for the answers compared below.
            statuses = Counter([await _asgi_status(app, f"{index}".encode()) for index in range(FLOOD)])
            after = [await client.get("/?victim"), await client.get("/?a-new-key")]
            return statuses, victim + after

    statuses, (first, limited, victim_after, new_key) = asyncio.run(run())
    assert first.status_code == 200 and limited.status_code == 429
    assert set(statuses) == {200, 429} and statuses[429] >= FLOOD - 2000, statuses
    assert victim_after.status_code == 429, "the exhausted key stays denied"
    assert new_key.status_code == 429, "a new key finds the table full"
    # The same answer as any denial: the same header names in the same order, the same
    # content type, core's body; Retry-After is the wait until a slot can be reclaimed.
    assert list(new_key.headers.keys()) == list(limited.headers.keys())
    assert new_key.headers["content-type"] == limited.headers["content-type"] == "application/json"
    retry_after = new_key.headers["retry-after"]
    assert 1 <= int(retry_after) <= HOUR_S
    assert new_key.content == f'{{"error":"rate_limited","retry_after":{retry_after}}}'.encode()
    assert new_key.headers["ratelimit-policy"] == limited.headers["ratelimit-policy"] == '"1-in-1h";q=1;w=3600'
    assert new_key.headers["ratelimit"].startswith('"1-in-1h";r=0;t=')


def test_wsgi_middleware_answers_a_full_table_with_a_429() -> None:
    flask = pytest.importorskip("flask")
    limiter = Limiter("1/hour", max_keys=12, clock=ManualClock())
    app = flask.Flask(__name__)

    @app.route("/")
    def hello() -> str:
        return "hello"

    app.wsgi_app = WSGIRateLimit(app.wsgi_app, limiter, key=lambda environ: environ["QUERY_STRING"])  # type: ignore[method-assign]
    client = app.test_client()
    responses = [client.get(f"/?{index}") for index in range(200)]
    statuses = Counter(response.status_code for response in responses)
    assert statuses[429] > 150, statuses
    denied = next(response for response in responses if response.status_code == 429)
    assert 1 <= int(denied.headers["Retry-After"]) <= HOUR_S
    assert denied.data == f'{{"error":"rate_limited","retry_after":{denied.headers["Retry-After"]}}}'.encode()
