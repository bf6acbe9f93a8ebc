"""cellgate.redis against limits' Redis storage, on one local redis-server (CELLGATE_REDIS_URL,
started by `make bench-py-redis`): decisions per second and latency per decision, for one
client and for 8 threads (each its own connection from one pool), over 1,000 keys, every
limit high enough that all are admitted. Also Redis's own µs per decision in scripts
(INFO commandstats: EVALSHA and EVAL; each peer decides in a Lua script)."""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from typing import Callable

import redis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from cellgate.redis import RedisLimiter

URL = os.environ["CELLGATE_REDIS_URL"]
DECISIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
KEYS = [f"user:{index}" for index in range(1000)]


def redis_us(admin: redis.Redis, decisions: int) -> float:
    """Redis's time in scripts (EVALSHA, EVAL) per decision: both peers here decide in Lua."""
    stats = admin.info("commandstats")
    usec = sum(int(stats.get(f"cmdstat_{name}", {}).get("usec", 0)) for name in ("evalsha", "eval"))
    return usec / decisions


def run(name: str, make: Callable[[], Callable[[str], bool]], threads: int, admin: redis.Redis) -> None:
    admin.flushdb()
    deciders = [make() for _ in range(threads)]
    for decide in deciders:
        decide(KEYS[0])
    admin.execute_command("CONFIG", "RESETSTAT")
    per_thread = DECISIONS // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def work(index: int) -> None:
        decide, own = deciders[index], latencies[index]
        for step in range(per_thread):
            started = time.perf_counter()
            decide(KEYS[(step * threads + index) % len(KEYS)])
            own.append(time.perf_counter() - started)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    every = sorted(value for own in latencies for value in own)
    total = len(every)
    print(
        f"{name:<44} {threads:>2} {total / elapsed:>10,.0f}/s  p50 {statistics.median(every) * 1e6:7.1f} µs"
        f"  p99 {every[int(total * 0.99)] * 1e6:7.1f} µs  redis {redis_us(admin, total):5.1f} µs"
    )


def main() -> None:
    admin = redis.Redis.from_url(URL)
    pool = redis.ConnectionPool.from_url(URL, socket_timeout=1, retry=None)
    storage = RedisStorage(URL)
    item = parse("1000000/minute")

    def cellgate() -> Callable[[str], bool]:
        limiter = RedisLimiter("1000000/minute", client=redis.Redis(connection_pool=pool))
        return lambda key: limiter.check(key).allowed

    def moving() -> Callable[[str], bool]:
        limiter = MovingWindowRateLimiter(storage)
        return lambda key: limiter.hit(item, key)

    def sliding() -> Callable[[str], bool]:
        limiter = SlidingWindowCounterRateLimiter(storage)
        return lambda key: limiter.hit(item, key)

    print(f"redis-server on {URL}, {DECISIONS} decisions per case, 1,000 keys")
    for threads in (1, 8):
        run("cellgate RedisLimiter.check", cellgate, threads, admin)
        run("limits MovingWindowRateLimiter.hit (Redis)", moving, threads, admin)
        run("limits SlidingWindowCounterRateLimiter.hit", sliding, threads, admin)


if __name__ == "__main__":
    main()
