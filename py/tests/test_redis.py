"""cellgate.redis against a real redis-server (``make test-py-redis`` starts one and sets
CELLGATE_REDIS_URL; without it these tests are skipped): the same decisions as the in-process
limiter, SCRIPT FLUSH survived, processes sharing one key exactly, the outage policies and
recovery on a server of their own that is killed and restarted, and the ASGI middleware
awaiting the async client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from cellgate import InvalidArgument, InvalidArgumentType, Limiter, ManualClock

URL = os.environ.get("CELLGATE_REDIS_URL")
pytestmark = pytest.mark.skipif(URL is None, reason="no redis-server: run make test-py-redis")

redis = pytest.importorskip("redis")
redis_asyncio = pytest.importorskip("redis.asyncio")

from cellgate.redis import SCRIPT_SHA1, AsyncRedisLimiter, RedisLimiter  # noqa: E402


@pytest.fixture
def client() -> Iterator[Any]:
    connection = redis.Redis.from_url(URL, socket_timeout=1)
    connection.flushdb()
    yield connection
    connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A redis-server of the test's own on 127.0.0.1, killed and restarted at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_timeout=0.2)
        for _ in range(200):
            try:
                probe.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_server() -> Iterator[Server]:
    server = Server()
    server.start()
    try:
        yield server
    finally:
        server.close()


def fields(decision: Any) -> tuple[Any, ...]:
    return (
        decision.allowed,
        decision.reason,
        decision.limit,
        decision.remaining,
        decision.retry_after_ns,
        decision.reset_after_ns,
        decision.headers(),
        decision.error_body(),
    )


@pytest.mark.parametrize(
    "rate, options",
    [
        ("5/second", {}),
        ("3/second; 10/minute", {}),
        ("7/13 seconds", {"burst": 3}),
        ("10/minute", {"algorithm": "token_bucket", "refill": "interval"}),
        # The block after a denial is written by the script, as core writes it in process.
        ("5/second", {"block_ms": 1_500}),
        ("3/second; 10/minute", {"block_ms": 700}),
        ("10/minute", {"algorithm": "token_bucket", "refill": "interval", "block_ms": 90_000}),
    ],
)
def test_random_schedules_decide_as_the_in_process_limiter(client: Any, rate: str, options: dict[str, Any]) -> None:
    rng = random.Random(f"{rate}{options}")
    clock = ManualClock(1_000_000_000)
    local = Limiter(rate, clock=clock, **options)
    remote = RedisLimiter(rate, client=client, **options)
    now = 1_000_000_000
    admitted = 0
    for step in range(600):
        now += rng.choice([0, 1, 1_000, 50_000_000, 300_000_000, 2_000_000_000])
        clock.set_ns(now)
        key = f"user:{rng.randrange(4)}"
        op = rng.choices(["check", "peek", "force", "refund", "reset"], [12, 2, 1, 2, 1])[0]
        if op == "reset":
            local.reset(key)
            got = remote.reset(key, now_ns=now)
            assert got.reason == "limit", step
            continue
        cost = rng.choice([None, 0, 1, 2, 5])
        want = getattr(local, op)(key, cost)
        got = getattr(remote, op)(key, cost, now_ns=now)
        assert fields(got) == fields(want), (step, op, key, cost)
        admitted += op == "check" and got.allowed
    assert admitted > 20
    assert remote.stats()["remote"] == 600
    assert remote.stats()["errors"] == 0


def test_script_flush_and_a_new_script_cache_are_survived(client: Any) -> None:
    limiter = RedisLimiter("3/hour", client=client)
    assert limiter.check("k").remaining == 2
    client.script_flush()
    assert not client.script_exists(SCRIPT_SHA1)[0]
    assert limiter.check("k").remaining == 1
    assert limiter.stats()["script_loads"] >= 1
    assert client.script_exists(SCRIPT_SHA1)[0]
    third, fourth = limiter.check("k"), limiter.check("k")
    assert (third.allowed, fourth.allowed, fourth.reason) == (True, False, "limit")
    assert fourth.headers()[-1] == ("Retry-After", "1200")


def test_keys_expire_when_their_buckets_are_full_again(client: Any) -> None:
    limiter = RedisLimiter("10/minute", client=client, prefix="exp:")
    limiter.check("k", 4)
    ttl_ms = client.pttl(b"exp:{k}")
    assert 24_000 - 50 <= ttl_ms <= 24_000 + 3, ttl_ms
    limiter.refund("k", 4)
    assert client.pttl(b"exp:{k}") <= 3, "a full bucket's record expires at once"


def test_key_secret_keeps_user_keys_out_of_redis(client: Any) -> None:
    limiter = RedisLimiter("10/minute", client=client, key_secret=b"0123456789abcdef")
    limiter.check("alice@example.com")
    keys = client.keys("*")
    assert len(keys) == 1 and b"alice" not in keys[0]
    other = RedisLimiter("10/minute", client=client, key_secret=b"0123456789abcdef")
    assert other.check("alice@example.com").remaining == 8, "hosts with one secret share the key"


HAMMER = """
import sys, redis
from cellgate.redis import RedisLimiter
limiter = RedisLimiter("50/hour", client=redis.Redis.from_url(sys.argv[1], socket_timeout=2))
print(sum(limiter.check("shared").allowed for _ in range(100)))
"""


def test_four_processes_on_one_key_admit_exactly_the_quota(client: Any) -> None:
    workers = [subprocess.Popen([sys.executable, "-c", HAMMER, str(URL)], stdout=subprocess.PIPE) for _ in range(4)]
    try:
        total = sum(int(worker.communicate(timeout=60)[0]) for worker in workers)
    finally:
        for worker in workers:
            worker.kill()
    assert total == 50


def test_outage_policies_and_recovery(own_server: Server) -> None:
    # retry=None: redis-py (6 and later) retries a failed call with backoff, about 8 s in all
    # by default, and the sync limiter waits as long as the client does.
    connection = redis.Redis(port=own_server.port, socket_timeout=0.2, socket_connect_timeout=0.2, retry=None)
    fallback = RedisLimiter("2/hour", client=connection, retry_interval_ms=200)
    opened = RedisLimiter("2/hour", client=connection, outage="open", prefix="o:")
    closed = RedisLimiter("2/hour", client=connection, outage="closed", prefix="c:", outage_retry_after_ms=5000)
    assert fallback.check("k").reason == "limit"
    own_server.kill()
    started = time.monotonic()
    decisions = [fallback.check("k") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, False, False, False]
    assert {d.reason for d in decisions} == {"fallback"}
    assert fallback.stats()["errors"] == 1 and fallback.stats()["skipped"] == 4
    assert (opened.check("k").allowed, opened.check("k").reason) == (True, "failed_open")
    denied = closed.check("k")
    assert (denied.allowed, denied.reason, denied.retry_after_ns) == (False, "failed_closed", 5_000_000_000)
    assert time.monotonic() - started < 2, "an outage never hangs a decision"
    own_server.start()
    time.sleep(0.25)
    back = fallback.check("k")
    assert (back.reason, back.remaining) == ("limit", 1), "decisions go back to Redis by themselves"


def test_bad_arguments_are_typed_errors_naming_them(client: Any) -> None:
    with pytest.raises(InvalidArgumentType, match="^client:"):
        RedisLimiter("1/second", client=object())
    with pytest.raises(InvalidArgument, match="^outage:"):
        RedisLimiter("1/second", client=client, outage="maybe")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="prefix"):
        RedisLimiter("1/second", client=client, prefix="{app}:")
    with pytest.raises(InvalidArgument, match="key_secret"):
        RedisLimiter("1/second", client=client, key_secret=b"short")
    with pytest.raises(InvalidArgument, match="^timeout_ms:"):
        AsyncRedisLimiter("1/second", client=client, timeout_ms=float("nan"))
    limiter = RedisLimiter("1/second", client=client)
    for cost in (-1, 1.5, float("nan"), True, 2**64):
        with pytest.raises((InvalidArgument, InvalidArgumentType), match="cost"):
            limiter.check("k", cost)  # type: ignore[arg-type]
    assert client.keys("*") == [], "a refused argument changes nothing"


def test_only_the_asgi_middleware_takes_the_async_limiter(client: Any) -> None:
    from cellgate.asgi import limit
    from cellgate.wsgi import RateLimitMiddleware as WsgiMiddleware

    limiter = AsyncRedisLimiter("1/second", client=redis_asyncio.Redis.from_url(URL))
    with pytest.raises(InvalidArgumentType, match="^limiter: is an AsyncRedisLimiter"):
        WsgiMiddleware(lambda environ, start_response: [], limiter=limiter)
    with pytest.raises(InvalidArgumentType, match="^limiter: is an AsyncRedisLimiter"):
        limit(limiter)
    # The sync one goes everywhere a Limiter does.
    WsgiMiddleware(lambda environ, start_response: [], limiter=RedisLimiter("1/second", client=client))


def test_async_limiter_decides_as_the_sync_one(client: Any) -> None:
    async def run() -> list[Any]:
        connection = redis_asyncio.Redis.from_url(URL)
        try:
            limiter = AsyncRedisLimiter("3/minute", client=connection)
            return [await limiter.check("a", now_ns=10**9 + step) for step in range(4)]
        finally:
            await connection.aclose()

    decisions = asyncio.run(run())
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].headers()[-1] == ("Retry-After", "20")


def closing(connection: Any) -> Any:
    """A Starlette lifespan that closes an async client on the app's own event loop."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await connection.aclose()

    return lifespan


def test_asgi_middleware_awaits_the_async_limiter(client: Any) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from cellgate.asgi import RateLimitMiddleware

    async def login(request: Any) -> PlainTextResponse:
        ok = request.query_params.get("password") == "hunter2"
        return PlainTextResponse("welcome" if ok else "no", status_code=200 if ok else 401)

    # redis.asyncio connects on first use: on the TestClient's event loop, where the
    # lifespan closes it.
    connection = redis_asyncio.Redis.from_url(URL)
    limiter = AsyncRedisLimiter("2/minute", client=connection)
    app = Starlette(routes=[Route("/login", login)], lifespan=closing(connection))
    app.add_middleware(RateLimitMiddleware, limiter=limiter, key=lambda scope: b"login", count="failed")
    with TestClient(app) as http:
        for _ in range(5):
            assert http.get("/login?password=hunter2").status_code == 200, "successes are refunded"
        assert http.get("/login").status_code == 401
        assert http.get("/login").status_code == 401
        denied = http.get("/login")
        assert denied.status_code == 429
        assert denied.headers["retry-after"] == "30"
        assert denied.headers["ratelimit"].startswith('"2-in-1min";r=0;')


def test_asgi_answers_503_when_redis_is_down_and_outage_is_closed(own_server: Server) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from cellgate.asgi import RateLimitMiddleware

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    connection = redis_asyncio.Redis(port=own_server.port)
    app = Starlette(routes=[Route("/", home)], lifespan=closing(connection))
    limiter = AsyncRedisLimiter("100/minute", client=connection, outage="closed", timeout_ms=100)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    with TestClient(app) as http:
        assert http.get("/").status_code == 200
        own_server.kill()
        down = http.get("/")
        assert down.status_code == 503
        assert down.headers["retry-after"] == "1"
    assert limiter.stats()["failed_closed"] == 1
