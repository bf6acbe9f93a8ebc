"""``Limiter``: the native keyed limiter plus waiting (blocking and asyncio) and a decorator."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar, Union, cast

from cellgate import _cellgate
from cellgate._cellgate import NEVER_NS, Decision

if TYPE_CHECKING:
    from cellgate.redis import AsyncRedisLimiter, RedisLimiter

Key = Union[str, bytes, int]
"""A key: a ``str`` (its UTF-8), ``bytes`` (as is) or an ``int`` (its decimal text)."""

F = TypeVar("F", bound=Callable[..., Any])

MANUAL_CLOCK_POLL_S = 0.01
"""With a ``ManualClock`` a wait cannot be slept in real time (the clock moves only when the
program moves it), so waiting re-checks every 10 ms of real time instead."""


class _Deadline:
    """Where a wait with a timeout must end: ``timeout`` seconds from its start in the
    limiter's clock *and* in real (monotonic) time, whichever comes first. With the monotonic
    clock the two are one; with a ``ManualClock`` that nobody advances, only real time moves,
    and the wait still ends."""

    __slots__ = ("limiter_ns", "real_ns")

    def __init__(self, limiter_now_ns: int, timeout_ns: int) -> None:
        self.limiter_ns = limiter_now_ns + timeout_ns
        self.real_ns = time.monotonic_ns() + timeout_ns


class RateLimited(Exception):
    """A request was refused: a wait timed out, or a decorated call was denied.

    ``decision`` is the denying decision; ``retry_after`` (float seconds, ``math.inf`` when
    the cost can never be admitted) is copied from it for convenience.
    """

    decision: Decision

    def __init__(self, decision: Decision, message: Optional[str] = None) -> None:
        self.decision = decision
        if message is None:
            message = f"rate limited by {decision.policy!r}: retry after {decision.retry_after:.6g} s"
        super().__init__(message)

    @property
    def retry_after(self) -> float:
        """Seconds to wait before retrying (``math.inf``: never)."""
        return self.decision.retry_after


class Limiter(_cellgate.Limiter):
    """A rate limiter with one bucket per key, in a table of bounded size allocated once.

    ``Limiter(rate, *, burst=None, algorithm="gcra", refill=None, max_keys=100_000,
    on_full="deny", block_ms=0, clock=None, store=None)``: core's ``Limiter``, which checks every option. ``rate``
    is a rate string (``"100/minute"``, ``"10/s; 1000/day"``), a
    ``Quota``, or a list of them; several quotas are decided all-or-nothing. ``burst``
    replaces a single quota's burst. ``algorithm`` is ``"gcra"`` or ``"token_bucket"``
    (``refill="greedy"``, which decides exactly as GCRA, or ``"interval"``: the whole rate
    at every period boundary). ``max_keys`` sizes the table; idle keys are reclaimed. A new key that finds
    its window of slots full of live keys is a decision, never an exception: with
    ``on_full="deny"`` (the default) a denial with ``reason == "table_full"`` and a
    ``Retry-After`` (until a slot can be reclaimed); with ``"allow_untracked"`` an admission
    with ``reason == "untracked"``, nothing stored (fail open, counted in ``stats()``).
    ``block_ms`` (an int, 0 by default: never) blocks a key for that long after each denial
    (rate-limiter-flexible's ``blockDuration``): every request of the key is denied meanwhile,
    with a ``retry_after`` saying so, the denials it answers do not extend it, and the bucket
    then refills from empty (the first request fits one emission interval after the block).
    ``clock`` is a
    ``ManualClock`` or None for the monotonic clock. ``store`` is None (the table in this
    process) or a ``SharedMemory``: the table in a file mapping that every process opening the
    same path shares, so that under ``gunicorn -w 4`` or ``uvicorn --workers 4`` the limit is
    the host's, not each worker's (every process must give the same quotas, ``refill`` and
    ``max_keys``; the clock is then the host's ``CLOCK_MONOTONIC``, never a ``ManualClock``).

    ``check``, ``peek``, ``force``, ``refund`` and ``reset`` are native; ``wait``,
    ``acquire`` and ``limit`` are defined here.
    """

    __slots__ = ()

    def _sleep_s(self, decision: Decision, deadline: Optional[_Deadline]) -> float:
        """How long to sleep before checking again, or raise ``RateLimited`` (with the denial)
        if the wait can never end, would end after the deadline in the limiter's clock (no
        point sleeping until the timeout), or has reached the deadline in real time."""
        wait_ns = decision.retry_after_ns
        if wait_ns == NEVER_NS:
            raise RateLimited(decision)
        sleep_ns = wait_ns if self.clock is None else min(wait_ns, round(MANUAL_CLOCK_POLL_S * 1e9))
        if deadline is not None:
            if self.now_ns() + wait_ns > deadline.limiter_ns:
                raise RateLimited(decision)
            real_left_ns = deadline.real_ns - time.monotonic_ns()
            if real_left_ns <= 0:
                raise RateLimited(decision)
            sleep_ns = min(sleep_ns, real_left_ns)
        return sleep_ns / 1e9

    def _deadline(self, timeout: Optional[float]) -> Optional[_Deadline]:
        if timeout is None:
            return None
        return _Deadline(self.now_ns(), _cellgate._duration_ns(timeout, "timeout"))

    def wait(self, key: Key, cost: int = 1, timeout: Optional[float] = None) -> Decision:
        """Blocks until ``cost`` is admitted for ``key`` and returns the admitting decision.

        Sleeps for the exact wait the denial reports (``time.sleep``, which releases the
        GIL), then checks again; never spins. Raises ``RateLimited`` (with the denial) at
        once when the cost exceeds the burst, or when the wait would end after ``timeout``
        seconds. The timeout bounds the wait both in the limiter's clock and in real
        (monotonic) time, whichever ends first. ``timeout=None`` waits as long as needed.

        With a ``ManualClock`` it re-checks every 10 ms of real time, as the clock moves. A
        ``ManualClock`` moves only when the program moves it: **without a timeout, a wait on
        one lasts until someone advances the clock**, forever if nobody does.
        """
        deadline = self._deadline(timeout)
        while True:
            decision = self.check(key, cost)
            if decision.allowed:
                return decision
            time.sleep(self._sleep_s(decision, deadline))

    async def acquire(self, key: Key, cost: int = 1, timeout: Optional[float] = None) -> Decision:
        """``wait`` for asyncio: awaits ``asyncio.sleep`` for the reported wait, then checks
        again. Raises ``RateLimited`` as ``wait`` does, with the same timeout rule (the
        limiter's clock and real time, whichever ends first; **without a timeout, an acquire
        on a ``ManualClock`` lasts until someone advances the clock**). Cancelling it consumes
        nothing."""
        deadline = self._deadline(timeout)
        while True:
            decision = self.check(key, cost)
            if decision.allowed:
                return decision
            await asyncio.sleep(self._sleep_s(decision, deadline))

    def limit(
        self,
        key: Union[Key, Callable[..., Key], None] = None,
        cost: Union[int, Callable[..., int]] = 1,
        *,
        wait: bool = False,
        timeout: Optional[float] = None,
    ) -> Callable[[F], F]:
        """A decorator limiting calls of a sync or async function.

        ``key`` is a fixed key, a callable given the call's arguments that returns the key,
        or None for one key per decorated function (its qualified name). ``cost`` is an int
        or a callable given the call's arguments. A denied call raises ``RateLimited``
        without running the function; with ``wait=True`` it waits instead (``acquire`` for
        coroutine functions, ``wait`` otherwise), up to ``timeout`` seconds.
        """
        if timeout is not None:
            _cellgate._duration_ns(timeout, "timeout")

        def decorate(func: F) -> F:
            default_key = f"{func.__module__}.{func.__qualname__}"

            def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Key, int]:
                if key is None:
                    call_key: Key = default_key
                elif callable(key):
                    call_key = key(*args, **kwargs)
                else:
                    call_key = key
                call_cost = cost(*args, **kwargs) if callable(cost) else cost
                return call_key, call_cost

            if inspect.iscoroutinefunction(func):
                async_func = cast(Callable[..., Awaitable[Any]], func)

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    call_key, call_cost = resolve(args, kwargs)
                    if wait:
                        await self.acquire(call_key, call_cost, timeout)
                    else:
                        decision = self.check(call_key, call_cost)
                        if not decision.allowed:
                            raise RateLimited(decision)
                    return await async_func(*args, **kwargs)

                return cast(F, async_wrapper)

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                call_key, call_cost = resolve(args, kwargs)
                if wait:
                    self.wait(call_key, call_cost, timeout)
                else:
                    decision = self.check(call_key, call_cost)
                    if not decision.allowed:
                        raise RateLimited(decision)
                return func(*args, **kwargs)

            return cast(F, wrapper)

        return decorate


SyncLimiter = Union[Limiter, "RedisLimiter"]
"""What a sync middleware checks: a ``Limiter``, or a ``cellgate.redis.RedisLimiter``."""
AnyLimiter = Union[Limiter, "RedisLimiter", "AsyncRedisLimiter"]
"""What an ASGI middleware checks: a sync limiter, or an awaited ``AsyncRedisLimiter``."""
