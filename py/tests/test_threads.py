"""Threads hammering one key never over-admit."""

from __future__ import annotations

import threading
from typing import Callable

from cellgate import Limiter, ManualClock, Policy


def hammer(check: Callable[[], bool], threads: int, per_thread: int) -> int:
    admitted = [0] * threads
    barrier = threading.Barrier(threads)

    def run(index: int) -> None:
        barrier.wait()
        count = 0
        for _ in range(per_thread):
            if check():
                count += 1
        admitted[index] = count

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(admitted)


def test_one_key_many_threads_frozen_time() -> None:
    clock = ManualClock()
    limiter = Limiter("1000/hour", clock=clock)
    admitted = hammer(lambda: limiter.check("hot").allowed, threads=8, per_thread=2_000)
    assert admitted == 1000, "exactly the burst: never more, and no lost admissions"


def test_one_key_many_threads_real_time_bound() -> None:
    # 1000 per second with a burst of 10, for as long as the threads take: admitted never
    # exceeds burst + rate * elapsed.
    limiter = Limiter("1000/second", burst=10)
    start_ns = limiter.now_ns()
    admitted = hammer(lambda: limiter.check(b"hot").allowed, threads=8, per_thread=5_000)
    elapsed_ns = limiter.now_ns() - start_ns
    assert admitted <= 10 + 1000 * elapsed_ns // 1_000_000_000 + 1
    assert admitted >= 10


def test_multi_quota_and_policy_threads() -> None:
    clock = ManualClock()
    limiter = Limiter("500/hour; 300/day", clock=clock)
    assert hammer(lambda: limiter.check(7, 3).allowed, threads=6, per_thread=500) == 100
    policy = Policy({"requests": "1000/hour", "tokens": "5000/hour"}, clock=clock)
    admitted = hammer(lambda: policy.check("k", requests=1, tokens=7).allowed, threads=6, per_thread=500)
    assert admitted == 5000 // 7
