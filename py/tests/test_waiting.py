"""Waiting: ``Limiter.wait`` (blocking) and ``Limiter.acquire`` (asyncio), and the decorator."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import cellgate
from cellgate import InvalidArgument, InvalidArgumentType, Limiter, ManualClock, RateLimited


class CountingLimiter(Limiter):
    """Counts checks, to show that waiting sleeps instead of spinning."""

    __slots__ = ()
    checks = 0

    def check(self, key: cellgate.Key, cost: int = 1) -> cellgate.Decision:
        CountingLimiter.checks += 1
        return super().check(key, cost)


def test_wait_sleeps_the_reported_wait() -> None:
    CountingLimiter.checks = 0
    limiter = CountingLimiter("20/second", burst=1)
    assert limiter.wait("k")
    started = time.monotonic()
    decision = limiter.wait("k")
    elapsed = time.monotonic() - started
    assert decision.allowed
    assert 0.045 <= elapsed < 1.0
    assert CountingLimiter.checks <= 4, "no busy spinning"


def test_acquire_sleeps_the_reported_wait() -> None:
    CountingLimiter.checks = 0
    limiter = CountingLimiter("20/second", burst=1)

    async def main() -> float:
        await limiter.acquire("k")
        started = time.monotonic()
        await limiter.acquire("k")
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    assert 0.045 <= elapsed < 1.0
    assert CountingLimiter.checks <= 4


def test_timeout_raises_rate_limited_at_once() -> None:
    limiter = Limiter("1/minute")
    limiter.check("k")
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        limiter.wait("k", timeout=0.5)
    assert time.monotonic() - started < 0.4, "a wait longer than the timeout fails fast"
    assert not info.value.decision.allowed
    assert 59 < info.value.retry_after <= 60

    async def main() -> None:
        with pytest.raises(RateLimited):
            await limiter.acquire("k", timeout=1)

    asyncio.run(main())


def test_cost_above_burst_never_waits() -> None:
    limiter = Limiter("5/second")
    with pytest.raises(RateLimited) as info:
        limiter.wait("k", cost=6)
    assert info.value.retry_after == float("inf")


def test_bad_timeout() -> None:
    limiter = Limiter("5/second")
    with pytest.raises(InvalidArgument) as info:
        limiter.wait("k", timeout=-1)
    assert info.value.argument == "timeout"
    with pytest.raises(InvalidArgumentType):
        limiter.wait("k", timeout=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        asyncio.run(limiter.acquire("k", timeout=float("nan")))


def test_wait_follows_a_manual_clock_moved_by_another_thread() -> None:
    clock = ManualClock()
    limiter = Limiter("1/hour", clock=clock)
    limiter.check("k")
    mover = threading.Timer(0.05, lambda: clock.advance(3600))
    mover.start()
    try:
        assert limiter.wait("k", timeout=7200).allowed
    finally:
        mover.join()


def test_cancelled_acquire_consumes_nothing() -> None:
    limiter = Limiter("1/minute")
    limiter.check("k")

    async def main() -> None:
        task = asyncio.ensure_future(limiter.acquire("k"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert limiter.peek("k").remaining == 0
    assert limiter.peek("other").remaining == 1


def test_decorator_sync_and_async() -> None:
    clock = ManualClock()
    limiter = Limiter("2/minute", clock=clock)
    calls: list[Any] = []

    @limiter.limit(key=lambda user, **_: f"user:{user}")
    def handler(user: str, value: int = 0) -> int:
        calls.append(user)
        return value

    assert handler("a", value=3) == 3 and handler("a") == 0
    with pytest.raises(RateLimited):
        handler("a")
    assert handler("b") == 0
    assert calls == ["a", "a", "b"], "a denied call does not run"
    assert handler.__name__ == "handler"

    @limiter.limit(cost=lambda n: n)
    async def weighted(n: int) -> int:
        return n

    assert asyncio.run(weighted(2)) == 2
    with pytest.raises(RateLimited):
        asyncio.run(weighted(1))
    clock.advance(30)
    assert asyncio.run(weighted(1)) == 1


def test_decorator_waits_when_asked() -> None:
    limiter = Limiter("20/second", burst=1)

    @limiter.limit(key="fixed", wait=True, timeout=1)
    def job() -> str:
        return "done"

    @limiter.limit(key="fixed-async", wait=True)
    async def async_job() -> str:
        return "done"

    started = time.monotonic()
    assert [job(), job()] == ["done", "done"]
    assert asyncio.run(async_job()) == "done"
    assert time.monotonic() - started >= 0.045
    with pytest.raises(InvalidArgument):
        limiter.limit(timeout=-1)


def run_bounded(body: Any, limit_s: float = 5.0) -> dict[str, Any]:
    """Runs ``body()`` in a daemon thread joined for at most ``limit_s`` real seconds, so that
    a wait that never returns fails the test instead of hanging it. Returns what happened:
    ``error`` (the exception raised, if any) and ``elapsed_s``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["result"] = body()
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error
        outcome["elapsed_s"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), f"the wait did not return within {limit_s} s of real time"
    return outcome


def test_a_timeout_bounds_a_manual_clock_wait_in_real_time() -> None:
    """Nobody advances the clock: the wait (0.1 s in the limiter's time, within the timeout
    there) ends when the timeout passes in real time, with the timed-out answer."""
    clock = ManualClock()
    limiter = Limiter("10/second", burst=1, clock=clock)
    assert limiter.check("k")
    for wait in (
        lambda: limiter.wait("k", timeout=0.2),
        lambda: asyncio.run(limiter.acquire("k", timeout=0.2)),
    ):
        outcome = run_bounded(wait)
        assert isinstance(outcome.get("error"), RateLimited), outcome
        assert not outcome["error"].decision.allowed
        assert outcome["error"].retry_after == pytest.approx(0.1)
        assert 0.15 <= outcome["elapsed_s"] < 1.0, outcome
    assert limiter.peek("k").remaining == 0 and clock.now_ns() == 0, "nothing consumed, time unmoved"


def test_a_manual_clock_moved_within_the_timeout_admits() -> None:
    """The clock is moved before the timeout passes in real time: the wait ends admitted."""
    clock = ManualClock()
    limiter = Limiter("10/second", burst=1, clock=clock)
    assert limiter.check("k")
    mover = threading.Timer(0.05, lambda: clock.advance(0.1))
    mover.start()
    try:
        outcome = run_bounded(lambda: limiter.wait("k", timeout=0.5))
    finally:
        mover.join()
    assert "error" not in outcome, outcome
    assert outcome["result"].allowed and outcome["elapsed_s"] < 0.5
