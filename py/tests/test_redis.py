"""cellgate.redis against a real redis-server (``make test-py-redis`` starts one and sets
CELLGATE_REDIS_URL; without it these tests are skipped): the same decisions as the in-process
limiter, SCRIPT FLUSH survived, processes sharing one key exactly, the outage policies and
recovery on a server of their own that is killed and restarted, the ASGI middleware
awaiting the async client, ``RedisPolicy``'s dimensions and reservations decided as the
in-process ``Policy``'s, and a three-node Redis Cluster."""

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

from cellgate import InvalidArgument, InvalidArgumentType, Limiter, ManualClock, Policy, Quota

URL = os.environ.get("CELLGATE_REDIS_URL")
pytestmark = pytest.mark.skipif(URL is None, reason="no redis-server: run make test-py-redis")

redis = pytest.importorskip("redis")
redis_asyncio = pytest.importorskip("redis.asyncio")

try:  # FastAPI resolves an endpoint's annotations in the module's globals.
    from starlette.requests import Request
except ImportError:  # pragma: no cover - the per-route test skips itself then
    Request = Any  # type: ignore[misc,assignment]

from cellgate.redis import (  # noqa: E402
    SCRIPT_SHA1,
    AsyncRedisLimiter,
    AsyncRedisPolicy,
    RedisLimiter,
    RedisPolicy,
    RedisReservation,
)


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
        WsgiMiddleware(lambda environ, start_response: [], limiter=limiter)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentType, match="^limiter: is an AsyncRedisLimiter, .*'home' is sync"):

        @limit(limiter)
        def home(request: Any) -> str:
            return "sync endpoints cannot await"

    # The sync one goes everywhere a Limiter does.
    WsgiMiddleware(lambda environ, start_response: [], limiter=RedisLimiter("1/second", client=client))


def test_per_route_limits_await_the_async_limiter(client: Any) -> None:
    pytest.importorskip("fastapi")
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient
    from starlette.responses import PlainTextResponse

    from cellgate.asgi import limit, limit_dependency

    connection = redis_asyncio.Redis.from_url(URL)
    logins = AsyncRedisLimiter("2/minute", client=connection, prefix="login:")
    searches = AsyncRedisLimiter("3/minute", client=connection, prefix="search:")
    app = FastAPI(lifespan=closing(connection))

    @app.post("/login")
    @limit(logins, key=lambda request: b"alice", count="failed")
    async def login(request: Request) -> PlainTextResponse:
        ok = request.query_params.get("password") == "hunter2"
        return PlainTextResponse("welcome" if ok else "no", status_code=200 if ok else 401)

    @app.get("/search", dependencies=[Depends(limit_dependency(searches, key=lambda request: b"bob"))])
    async def search() -> dict[str, str]:
        return {"results": "none"}

    with TestClient(app) as http:
        for _ in range(4):
            assert http.post("/login?password=hunter2").status_code == 200, "successes are refunded in Redis"
        assert [http.post("/login").status_code for _ in range(3)] == [401, 401, 429]
        answers = [http.get("/search") for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        assert answers[0].headers["ratelimit"].startswith('"3-in-1min";r=2;')
        assert answers[-1].headers["retry-after"] == "20"
    assert client.exists(b"login:{alice}") and client.exists(b"search:{bob}"), "Redis decided both"
    assert logins.stats()["remote"] == 4 + 3 + 4, "every success was a check and a refund in Redis"


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


POLICIES = [
    ({"requests": "5/second; 20/minute", "tokens": "300/second"}, {}),
    ([("requests", "4/second"), ("input", Quota.per_minute(1000, burst=400, name="in")), ("output", "200/second")], {}),
    ({"requests": "3/second", "tokens": "100/second"}, {"block_ms": 1_200}),
]


@pytest.mark.parametrize("dimensions, options", POLICIES)
def test_policy_schedules_with_reservations_decide_as_the_in_process_policy(
    client: Any, dimensions: Any, options: dict[str, Any]
) -> None:
    rng = random.Random(f"{dimensions}{options}")
    clock = ManualClock(1_000_000_000)
    local = Policy(dimensions, clock=clock, **options)
    remote = RedisPolicy(dimensions, client=client, **options)
    assert (remote.dimensions, remote.quota_names) == (local.dimensions, local.quota_names)
    now = 1_000_000_000
    held: list[tuple[Any, RedisReservation]] = []
    counts = dict.fromkeys(["admitted", "refused", "settled"], 0)

    def costs() -> dict[str, int]:
        return {name: rng.choice([0, 1, 2, 40, 150]) for name in local.dimensions}

    for step in range(500):
        now += rng.choice([0, 1, 1_000, 50_000_000, 300_000_000, 2_000_000_000])
        clock.set_ns(now)
        key = f"user:{rng.randrange(3)}"
        op = rng.choices(["check", "peek", "force", "refund", "reset", "reserve", "settle"], [10, 2, 1, 2, 1, 4, 4])[0]
        if op == "settle" and held:
            mine, theirs = held.pop(rng.randrange(len(held)))
            actual = {name: cost for name, cost in costs().items() if rng.random() < 0.7}
            want, got = local.settle(mine, **actual), remote.settle(theirs, now_ns=now, **actual)
            assert not theirs.pending and not mine.pending
            counts["settled"] += 1
        elif op == "reserve":
            estimate = costs()
            mine, theirs = local.reserve(key, **estimate), remote.reserve(key, now_ns=now, **estimate)
            assert (bool(theirs), theirs.estimate, theirs.remote) == (bool(mine), mine.estimate, bool(mine)), step
            want, got = mine.decision, theirs.decision
            if mine:
                held.append((mine, theirs))
            counts["admitted" if mine else "refused"] += 1
        elif op == "reset":
            local.reset(key)
            assert remote.reset(key, now_ns=now).reason == "limit", step
            continue
        else:
            asked = costs()
            op = "check" if op == "settle" else op  # nothing held to settle: a check
            want, got = getattr(local, op)(key, **asked), getattr(remote, op)(key, now_ns=now, **asked)
        assert fields(got) == fields(want), (step, op, key)
    assert min(counts.values()) > 10, counts
    assert remote.stats()["errors"] == 0


def test_policy_arguments_and_reservations_are_checked(client: Any) -> None:
    policy = RedisPolicy({"requests": "10/minute", "tokens": "1000/minute"}, client=client)
    other = RedisPolicy({"requests": "10/minute", "tokens": "1000/minute"}, client=client, prefix="other:")
    with pytest.raises(InvalidArgument, match="^tokens: no cost given"):
        policy.check("k", requests=1)
    with pytest.raises(InvalidArgument, match="^colour: is not a dimension"):
        policy.check("k", requests=1, tokens=1, colour=2)
    for bad in (-1, 1.5, float("nan"), 2**64):
        with pytest.raises((InvalidArgument, InvalidArgumentType), match="^tokens:"):
            policy.check("k", requests=1, tokens=bad)
    with pytest.raises(InvalidArgument, match="^dimensions: .now_ns. cannot name a dimension"):
        RedisPolicy({"now_ns": "1/second"}, client=client)
    with pytest.raises(InvalidArgumentType, match="^client:"):
        RedisPolicy({"requests": "1/second"}, client=None)
    assert client.keys("*") == [], "a refused argument changes nothing"
    reservation = policy.reserve("k", requests=1, tokens=600)
    assert reservation and reservation.pending and reservation.remote
    with pytest.raises(InvalidArgument, match="^reservation: .*another"):
        other.settle(reservation, tokens=10)
    assert reservation.pending, "another policy's refusal leaves it to its own"
    with pytest.raises(InvalidArgumentType, match="^reservation:"):
        policy.settle(object())  # type: ignore[arg-type]
    settled = policy.settle(reservation, tokens=100)
    assert (settled.allowed, not reservation.pending) == (True, True)
    with pytest.raises(InvalidArgument, match="^reservation: was already settled"):
        policy.settle(reservation)
    refused = policy.reserve("k", requests=1, tokens=950)
    assert not refused and not refused.pending
    with pytest.raises(InvalidArgument, match="^reservation: was refused"):
        policy.settle(refused)
    # 100 of the 600 reserved were used: 900 are left, the 950 refused above wrote nothing.
    assert policy.check("k", requests=0, tokens=900).allowed
    with pytest.raises(InvalidArgumentType, match="^limiter:"):
        from cellgate.wsgi import RateLimitMiddleware

        RateLimitMiddleware(lambda environ, start_response: [], limiter=policy)


def test_policy_reservations_during_an_outage_settle_in_this_process(own_server: Server) -> None:
    connection = redis.Redis(port=own_server.port, socket_timeout=0.2, socket_connect_timeout=0.2, retry=None)
    with connection:
        outage_reservations(own_server, connection)


def outage_reservations(own_server: Server, connection: Any) -> None:
    fallback = RedisPolicy({"requests": "2/hour", "tokens": "100/hour"}, client=connection, retry_interval_ms=200)
    opened = RedisPolicy({"requests": "2/hour"}, client=connection, outage="open", prefix="o:")
    before = fallback.reserve("k", requests=1, tokens=60)
    assert before.remote
    own_server.kill()
    local = fallback.reserve("k", requests=1, tokens=60)
    assert (bool(local), local.remote, local.decision.reason) == (True, False, "fallback")
    assert not fallback.reserve("k", requests=1, tokens=60), "the fallback limiter holds the first 60"
    assert fallback.settle(local, tokens=10).reason == "fallback"
    assert fallback.reserve("k", requests=0, tokens=80), "the settle refunded 50 in this process"
    untracked = opened.reserve("k")
    assert (bool(untracked), untracked.decision.reason) == (True, "failed_open")
    assert opened.settle(untracked).reason == "failed_open"
    lost = fallback.settle(before, tokens=0)
    assert lost.reason == "fallback", "a settle Redis cannot take is answered by the outage policy"
    own_server.start()
    time.sleep(0.25)
    back = fallback.check("k", requests=1, tokens=0)
    assert (back.reason, back.allowed) == ("limit", True), "decisions go back to Redis by themselves"
    stats = fallback.stats()
    assert stats["fallback"] >= 4 and stats["errors"] >= 1, stats


def test_async_policy_decides_as_the_sync_one(client: Any) -> None:
    dimensions = {"requests": "3/minute", "tokens": "500/minute"}

    async def run() -> list[Any]:
        connection = redis_asyncio.Redis.from_url(URL)
        try:
            policy = AsyncRedisPolicy(dimensions, client=connection, prefix="a:")
            reservation = await policy.reserve("k", now_ns=10**9, requests=1, tokens=400)
            settled = await policy.settle(reservation, now_ns=10**9, tokens=100)
            rest = [await policy.check("k", now_ns=10**9, requests=1, tokens=100) for _ in range(3)]
            return [reservation.decision, settled, *rest]
        finally:
            await connection.aclose()

    sync = RedisPolicy(dimensions, client=client, prefix="s:")
    reservation = sync.reserve("k", now_ns=10**9, requests=1, tokens=400)
    want = [reservation.decision, sync.settle(reservation, now_ns=10**9, tokens=100)]
    want += [sync.check("k", now_ns=10**9, requests=1, tokens=100) for _ in range(3)]
    got = asyncio.run(run())
    assert [fields(decision) for decision in got] == [fields(decision) for decision in want]
    assert [decision.allowed for decision in got] == [True, True, True, True, False]


def cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is a free port too."""
    while True:
        port = free_port()
        if port + 10_000 > 65_535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[int]]:
    """A three-node Redis Cluster on loopback ports of its own (no replicas), stopped after."""
    ports = [cluster_port() for _ in range(3)]
    directory = tempfile.mkdtemp()
    nodes = [
        subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf", "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            with redis.Redis(port=port, socket_timeout=0.2) as probe:
                for _ in range(200):
                    with contextlib.suppress(redis.exceptions.ConnectionError):
                        probe.ping()
                        break
                    time.sleep(0.02)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=30,
        )
        deadline = time.monotonic() + 20
        probes = [redis.Redis(port=port) for port in ports]
        try:
            while not all(b"cluster_state:ok" in probe.execute_command("CLUSTER", "INFO") for probe in probes):
                assert time.monotonic() < deadline, "the cluster did not come up"
                time.sleep(0.1)
        finally:
            for probe in probes:
                probe.close()
        yield ports
    finally:
        for node in nodes:
            node.kill()
            node.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_three_node_cluster_runs_policies_without_crossslot(cluster: list[int]) -> None:
    from redis.cluster import ClusterNode, RedisCluster

    connection = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in cluster], socket_timeout=2)
    try:
        policy = RedisPolicy({"requests": "3/minute", "tokens": "1000/minute"}, client=connection, prefix="cl:")
        keys = [f"user:{index}" for index in range(30)]
        for key in keys:
            assert [policy.check(key, requests=1, tokens=100).allowed for _ in range(4)] == [True, True, True, False]
            reservation = policy.reserve(key, requests=0, tokens=500)
            assert reservation.remote and policy.settle(reservation, tokens=200).reason == "limit"
        stats = policy.stats()
        assert (stats["errors"], stats["remote"]) == (0, 30 * 6), stats
        # The 30 records are spread over the three nodes: the hash tag chose their slots.
        per_node = []
        for port in cluster:
            with redis.Redis(port=port) as node:
                per_node.append(node.dbsize())
        assert sum(per_node) == 30 and min(per_node) > 0, per_node
    finally:
        connection.close()


def test_async_cluster_client_runs_policies(cluster: list[int]) -> None:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    async def run() -> tuple[list[bool], dict[str, int]]:
        connection = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in cluster])
        try:
            policy = AsyncRedisPolicy({"requests": "2/minute"}, client=connection, prefix="acl:", timeout_ms=2000)
            allowed = [(await policy.check(f"k{index % 5}", requests=1)).allowed for index in range(15)]
            return allowed, policy.stats()
        finally:
            await connection.aclose()

    allowed, stats = asyncio.run(run())
    assert allowed == [True] * 10 + [False] * 5
    assert stats["errors"] == 0, stats
