"""Limits that hold across hosts: a keyed limiter whose buckets live in Redis.

``RedisLimiter(rate, client=redis.Redis(...))`` decides exactly as ``Limiter(rate)`` does,
one ``EVALSHA`` per decision on your own client (its pool, TLS, auth), with Redis's clock;
``AsyncRedisLimiter`` does the same on a ``redis.asyncio.Redis`` and is awaited (the ASGI
middleware awaits it). ``RedisPolicy`` and ``AsyncRedisPolicy`` are ``Policy(dimensions)``
in Redis: named dimensions charged all-or-nothing inside the script, and ``reserve`` of an
estimate then ``settle`` of the actual. The script, its arguments, the decoding of the reply (checked against
core) and the outage policy are core's, shared with every cellgate runtime: a Python and a
Node process on one Redis share one limit.

When Redis cannot be asked (an error, a timeout, a reply core refuses), the outage policy
decides: ``"fallback"`` (the default: this process's own limiter with the same quotas,
``reason == "fallback"``), ``"open"`` (admit, ``"failed_open"``) or ``"closed"`` (deny,
``"failed_closed"``, which the middleware answers 503). After a failure, decisions skip Redis
for ``retry_interval_ms`` and then try it again, so an outage costs no timeout per request and
recovery needs nothing. ``redis`` (redis-py) is an optional dependency: ``pip install
cellgate[redis]``.

The sync ``RedisLimiter`` waits as long as the client does: give it a ``socket_timeout`` and
``socket_connect_timeout`` (redis-py's defaults wait forever) and ``retry=None`` (redis-py 6
and later retry a failed call with backoff, about 8 s in all by default, measured). The async
one also bounds each call by ``timeout_ms`` (default 50), whatever the client does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal, Mapping, Optional, Sequence, Union

from . import _cellgate
from ._cellgate import Decision, InvalidArgument, InvalidArgumentType, ManualClock, Quota
from ._http import _raise

__all__ = [
    "AsyncRedisLimiter",
    "AsyncRedisPolicy",
    "OutagePolicy",
    "RedisLimiter",
    "RedisPolicy",
    "RedisReservation",
    "SCRIPT",
    "SCRIPT_SHA1",
]

OutagePolicy = Literal["fallback", "open", "closed"]
"""What decides when Redis cannot be asked in time."""

_Op = Literal["check", "peek", "force", "refund", "reset"]
_Key = Union[str, bytes, int]
_Rate = Union[str, Quota, Sequence[Union[str, Quota]]]
_Dimensions = Union[Mapping[str, _Rate], Sequence[tuple[str, _Rate]]]

_PROBE = _cellgate._RemoteLimiter("1/second")
SCRIPT: str = _PROBE.script
"""The Lua script (``EVAL``), core's."""
SCRIPT_SHA1: str = _PROBE.sha1
"""The script's SHA1 (``EVALSHA``)."""
del _PROBE

_STATS = ("remote", "failed_open", "failed_closed", "fallback", "errors", "skipped", "script_loads")
_OUTAGE_REASONS = {"failed_open": "failed_open", "failed_closed": "failed_closed", "fallback": "fallback"}


def _check_ms(value: Any, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        _raise(InvalidArgument, argument, f"must be a finite number of milliseconds >= 0, not {value!r}")
    return float(value)


class RedisReservation:
    """An estimate reserved in Redis by ``RedisPolicy.reserve`` (truthy when admitted), to
    settle once with the actual costs. ``decision`` is the reserving check's; ``estimate``
    the costs reserved per dimension; ``remote`` whether Redis holds the charge (``False``:
    the outage policy does, and the settle happens in this process)."""

    __slots__ = ("_limiter", "_native", "allowed", "decision", "estimate", "remote")

    def __init__(self, limiter: "_Base", decision: Decision, native: Any, estimate: list[tuple[str, int]]) -> None:
        self._limiter = limiter
        self._native = native
        self.allowed: bool = native is not None
        self.decision = decision
        self.estimate = estimate
        self.remote: bool = native is not None and native.remote

    @property
    def pending(self) -> bool:
        """Whether it waits to be settled."""
        return self._native is not None and self._native.pending

    def __bool__(self) -> bool:
        return self.allowed

    def __repr__(self) -> str:
        return f"RedisReservation(allowed={self.allowed}, estimate={self.estimate!r}, pending={self.pending})"


class _Base:
    """What every Redis limiter shares: the native half, the counters and the retry interval."""

    def __init__(
        self,
        native: Any,
        *,
        client: Any,
        timeout_ms: float,
        retry_interval_ms: float,
    ) -> None:
        self._native = native
        self._client = client
        self._timeout_s = _check_ms(timeout_ms, "timeout_ms") / 1000
        self._retry_interval_s = _check_ms(retry_interval_ms, "retry_interval_ms") / 1000
        self._params = native.params
        self._down_until = 0.0
        self._stats = dict.fromkeys(_STATS, 0)

    @property
    def outage(self) -> OutagePolicy:
        """``"fallback"``, ``"open"`` or ``"closed"``."""
        return self._native.outage  # type: ignore[no-any-return]

    @property
    def quota_names(self) -> list[str]:
        """The names headers show, in quota order."""
        return self._native.quota_names  # type: ignore[no-any-return]

    def stats(self) -> dict[str, int]:
        """Decisions per path since the limiter was made: ``remote`` (Redis decided),
        ``failed_open``, ``failed_closed``, ``fallback``; ``errors`` (calls that failed),
        ``skipped`` (decisions within ``retry_interval_ms`` of a failure) and ``script_loads``
        (``EVAL`` after ``NOSCRIPT``: a restart, a failover, ``SCRIPT FLUSH``)."""
        return dict(self._stats)

    def _skip(self) -> bool:
        if self._down_until and time.monotonic() < self._down_until:
            self._stats["skipped"] += 1
            return True
        return False

    def _decided(self, call: Any, reply: Any, reserve: bool) -> Any:
        decided = (self._native.decode_reserve if reserve else self._native.decode)(call, reply)
        if decided is None:
            return self._failed(call, reserve)
        self._down_until = 0.0
        self._stats["remote"] += 1
        return decided

    def _failed(self, call: Any, reserve: bool) -> Any:
        self._stats["errors"] += 1
        self._down_until = time.monotonic() + self._retry_interval_s
        return self._outage(call, reserve)

    def _outage(self, call: Any, reserve: bool) -> Any:
        if reserve:
            decided = self._native.outage_reserve(call)
            self._count_outage(decided[0])
            return decided
        decision = self._native.outage_decision(call)
        self._count_outage(decision)
        return decision

    def _count_outage(self, decision: Decision) -> None:
        self._stats[_OUTAGE_REASONS.get(decision.reason, "fallback")] += 1

    def _args(self, key: bytes, argv: bytes) -> tuple[Any, ...]:
        return ("EVALSHA", SCRIPT_SHA1, 1, key, self._params, argv)

    def _reservation(self, decided: Any) -> RedisReservation:
        decision, native, estimate = decided
        return RedisReservation(self, decision, native, list(zip(self._native.dimensions, estimate)))

    def _settle_plan(self, reservation: Any, actual: Optional[dict[str, Any]], now_ns: Optional[int]) -> Any:
        """The native settle of ``reservation``: the call to send, or the decision."""
        if not isinstance(reservation, RedisReservation):
            _raise(
                InvalidArgumentType,
                "reservation",
                f"must be a RedisReservation from reserve, not {type(reservation).__name__}",
            )
        if reservation._native is None:
            _raise(InvalidArgument, "reservation", "was refused: nothing was reserved")
        plan = self._native.settle(reservation._native, actual, now_ns)
        if isinstance(plan, Decision):
            self._count_outage(plan)
        return plan



def _noscript(error: BaseException) -> bool:
    # redis-py raises NoScriptError ("No matching script"), other clients the raw "NOSCRIPT".
    return type(error).__name__ == "NoScriptError" or "NOSCRIPT" in str(error)


def _check_client(client: Any) -> None:
    if client is None or not hasattr(client, "execute_command"):
        _raise(
            InvalidArgumentType,
            "client",
            f"must be a redis-py client (redis.Redis, redis.asyncio.Redis, RedisCluster), not {type(client).__name__}",
        )


class _Sync(_Base):
    """Sends on a sync redis-py client: as long as the client waits."""

    def _run(self, encoded: tuple[bytes, bytes, Any], reserve: bool = False) -> Any:
        redis_key, argv, call = encoded
        if self._skip():
            return self._outage(call, reserve)
        try:
            try:
                reply = self._client.execute_command(*self._args(redis_key, argv), NEVER_DECODE=True)
            except Exception as error:
                if not _noscript(error):
                    raise
                self._stats["script_loads"] += 1
                reply = self._client.execute_command(
                    "EVAL", SCRIPT, 1, redis_key, self._params, argv, NEVER_DECODE=True
                )
        except Exception:
            return self._failed(call, reserve)
        return self._decided(call, reply, reserve)


class _Async(_Base):
    """Sends on a ``redis.asyncio`` client, each call bounded by ``timeout_ms``."""

    async def _run(self, encoded: tuple[bytes, bytes, Any], reserve: bool = False) -> Any:
        redis_key, argv, call = encoded
        if self._skip():
            return self._outage(call, reserve)
        try:
            reply = await asyncio.wait_for(self._send(redis_key, argv), self._timeout_s)
        except Exception:
            return self._failed(call, reserve)
        return self._decided(call, reply, reserve)

    async def _send(self, redis_key: bytes, argv: bytes) -> Any:
        try:
            return await self._client.execute_command(*self._args(redis_key, argv), NEVER_DECODE=True)
        except Exception as error:
            if not _noscript(error):
                raise
            self._stats["script_loads"] += 1
            return await self._client.execute_command(
                "EVAL", SCRIPT, 1, redis_key, self._params, argv, NEVER_DECODE=True
            )


class _RateLimiter(_Base):
    """The constructor of a limiter over a rate string."""

    def __init__(
        self,
        rate: _Rate,
        *,
        client: Any,
        prefix: Optional[str] = None,
        outage: OutagePolicy = "fallback",
        timeout_ms: float = 50,
        retry_interval_ms: float = 1000,
        key_secret: Optional[bytes] = None,
        expiry_grace_ms: int = 0,
        outage_retry_after_ms: int = 1000,
        burst: Optional[int] = None,
        algorithm: Literal["gcra", "token_bucket"] = "gcra",
        refill: Optional[Literal["greedy", "interval"]] = None,
        max_keys: Optional[int] = None,
        on_full: Literal["deny", "allow_untracked"] = "deny",
        clock: Optional[ManualClock] = None,
        block_ms: int = 0,
    ) -> None:
        _check_client(client)
        native = _cellgate._RemoteLimiter(
            rate,
            burst=burst,
            algorithm=algorithm,
            refill=refill,
            max_keys=max_keys,
            on_full=on_full,
            clock=clock,
            prefix=prefix,
            outage=outage,
            key_secret=key_secret,
            expiry_grace_ms=expiry_grace_ms,
            outage_retry_after_ms=outage_retry_after_ms,
            block_ms=block_ms,
        )
        super().__init__(native, client=client, timeout_ms=timeout_ms, retry_interval_ms=retry_interval_ms)
        self.rate = rate

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rate!r}, outage={self.outage!r})"


class _PolicyLimiter(_Base):
    """The constructor of a limiter over named dimensions."""

    def __init__(
        self,
        dimensions: _Dimensions,
        *,
        client: Any,
        prefix: Optional[str] = None,
        outage: OutagePolicy = "fallback",
        timeout_ms: float = 50,
        retry_interval_ms: float = 1000,
        key_secret: Optional[bytes] = None,
        expiry_grace_ms: int = 0,
        outage_retry_after_ms: int = 1000,
        max_keys: Optional[int] = None,
        on_full: Literal["deny", "allow_untracked"] = "deny",
        clock: Optional[ManualClock] = None,
        block_ms: int = 0,
    ) -> None:
        _check_client(client)
        native = _cellgate._RemoteLimiter(
            dimensions=dimensions,
            max_keys=max_keys,
            on_full=on_full,
            clock=clock,
            prefix=prefix,
            outage=outage,
            key_secret=key_secret,
            expiry_grace_ms=expiry_grace_ms,
            outage_retry_after_ms=outage_retry_after_ms,
            block_ms=block_ms,
        )
        super().__init__(native, client=client, timeout_ms=timeout_ms, retry_interval_ms=retry_interval_ms)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dimensions={self.dimensions!r}, outage={self.outage!r})"

    @property
    def dimensions(self) -> list[str]:
        """The dimension names, in order."""
        return self._native.dimensions  # type: ignore[no-any-return]


class RedisLimiter(_RateLimiter, _Sync):
    """The keyed limiter of ``Limiter(rate)`` with its buckets in Redis, on a sync redis-py
    client (``redis.Redis`` or ``redis.cluster.RedisCluster``). Arguments as ``Limiter``'s,
    plus ``client``, ``prefix`` (default ``"cellgate:"``; no braces: the user key is the
    Cluster hash tag), ``outage``, ``timeout_ms`` (async only), ``retry_interval_ms``,
    ``key_secret`` (16 bytes shared by the hosts: keys are stored as their keyed hash, not in
    clear), ``expiry_grace_ms``, ``outage_retry_after_ms`` and ``block_ms`` (as
    ``Limiter``'s: the script writes the block into the record). Bad arguments raise
    ``InvalidArgument``/``InvalidArgumentType`` naming the argument; Redis's failures never
    raise: the outage policy decides."""

    def _apply(self, op: _Op, key: _Key, cost: Optional[int], now_ns: Optional[int]) -> Decision:
        return self._run(self._native.encode(op, key, cost, now_ns))  # type: ignore[no-any-return]

    def check(self, key: _Key, cost: Optional[int] = None, *, now_ns: Optional[int] = None) -> Decision:
        """Admits ``cost`` (default 1) for ``key`` if every quota has room, charging all."""
        return self._apply("check", key, cost, now_ns)

    def peek(self, key: _Key, cost: Optional[int] = None, *, now_ns: Optional[int] = None) -> Decision:
        """Whether ``check`` would admit ``cost`` now; changes nothing."""
        return self._apply("peek", key, cost, now_ns)

    def force(self, key: _Key, cost: Optional[int] = None, *, now_ns: Optional[int] = None) -> Decision:
        """Charges ``cost`` whatever the quotas hold (into debt)."""
        return self._apply("force", key, cost, now_ns)

    def refund(self, key: _Key, cost: Optional[int] = None, *, now_ns: Optional[int] = None) -> Decision:
        """Gives ``cost`` back (never above a full bucket)."""
        return self._apply("refund", key, cost, now_ns)

    def reset(self, key: _Key, *, now_ns: Optional[int] = None) -> Decision:
        """Makes ``key``'s buckets full."""
        return self._apply("reset", key, None, now_ns)


class AsyncRedisLimiter(_RateLimiter, _Async):
    """``RedisLimiter`` on a ``redis.asyncio.Redis`` (or ``redis.asyncio.RedisCluster``): the
    same arguments and decisions, each method a coroutine, each call bounded by
    ``timeout_ms`` (default 50) after which the outage policy decides."""

    async def _apply(self, op: _Op, key: _Key, cost: Optional[int], now_ns: Optional[int]) -> Decision:
        return await self._run(self._native.encode(op, key, cost, now_ns))  # type: ignore[no-any-return]

    async def check(self, key: _Key, cost: Optional[int] = None, *, now_ns: Optional[int] = None) -> Decision:
        """As ``RedisLimiter.check``."""
        return await self._apply("check", key, cost, now_ns)

    async def peek(self, key: _Key, cost: Optional[int] = None, *, now_ns: Optional[int] = None) -> Decision:
        """As ``RedisLimiter.peek``."""
        return await self._apply("peek", key, cost, now_ns)

    async def force(self, key: _Key, cost: Optional[int] = None, *, now_ns: Optional[int] = None) -> Decision:
        """As ``RedisLimiter.force``."""
        return await self._apply("force", key, cost, now_ns)

    async def refund(self, key: _Key, cost: Optional[int] = None, *, now_ns: Optional[int] = None) -> Decision:
        """As ``RedisLimiter.refund``."""
        return await self._apply("refund", key, cost, now_ns)

    async def reset(self, key: _Key, *, now_ns: Optional[int] = None) -> Decision:
        """As ``RedisLimiter.reset``."""
        return await self._apply("reset", key, None, now_ns)


class RedisPolicy(_PolicyLimiter, _Sync):
    """``Policy(dimensions)`` with its buckets in Redis, on a sync redis-py client: named
    dimensions (requests, input tokens, output tokens), each with its quotas, charged
    all-or-nothing in one script call; costs as keyword arguments (``check(key,
    requests=1, tokens=500)``); ``reserve`` an estimate and ``settle`` the actual. The Redis
    arguments are ``RedisLimiter``'s. ``key``, ``reservation`` and ``now_ns`` cannot name a
    dimension. Redis's failures never raise: the outage policy decides (a reservation made
    by it is settled in this process)."""

    def _apply(self, op: _Op, key: _Key, costs: Optional[dict[str, Any]], now_ns: Optional[int]) -> Decision:
        return self._run(self._native.encode(op, key, costs or None, now_ns))  # type: ignore[no-any-return]

    def check(self, key: _Key, *, now_ns: Optional[int] = None, **costs: int) -> Decision:
        """Admits the costs for ``key`` only if every quota admits its dimension's, charging
        all or none. With several dimensions every one must be named (0 is a cost)."""
        return self._apply("check", key, costs, now_ns)

    def peek(self, key: _Key, *, now_ns: Optional[int] = None, **costs: int) -> Decision:
        """The decision ``check`` would make, consuming nothing."""
        return self._apply("peek", key, costs, now_ns)

    def force(self, key: _Key, *, now_ns: Optional[int] = None, **costs: int) -> Decision:
        """Charges the costs on every quota regardless (debt)."""
        return self._apply("force", key, costs, now_ns)

    def refund(self, key: _Key, *, now_ns: Optional[int] = None, **costs: int) -> Decision:
        """Gives the costs back on every quota, never above full."""
        return self._apply("refund", key, costs, now_ns)

    def reset(self, key: _Key, *, now_ns: Optional[int] = None) -> Decision:
        """Makes every quota's bucket for ``key`` full."""
        return self._apply("reset", key, None, now_ns)

    def reserve(self, key: _Key, *, now_ns: Optional[int] = None, **estimate: int) -> RedisReservation:
        """Reserves ``estimate`` for ``key`` (a ``check`` of it): the reservation is truthy
        when admitted; settle it once with the actual costs."""
        decided = self._run(self._native.encode_reserve(key, estimate or None, now_ns), reserve=True)
        return self._reservation(decided)

    def settle(self, reservation: RedisReservation, *, now_ns: Optional[int] = None, **actual: int) -> Decision:
        """Settles ``reservation`` with the actual costs (a dimension not named keeps its
        estimate): refunds what was not used, charges what exceeds the estimate (possibly
        into debt). Once; a refused reservation cannot be settled (``InvalidArgument``)."""
        plan = self._settle_plan(reservation, actual or None, now_ns)
        if isinstance(plan, Decision):
            return plan
        return self._run(plan)  # type: ignore[no-any-return]


class AsyncRedisPolicy(_PolicyLimiter, _Async):
    """``RedisPolicy`` on a ``redis.asyncio`` client: the same arguments and decisions, each
    method a coroutine, each call bounded by ``timeout_ms`` (default 50)."""

    async def _apply(self, op: _Op, key: _Key, costs: Optional[dict[str, Any]], now_ns: Optional[int]) -> Decision:
        return await self._run(self._native.encode(op, key, costs or None, now_ns))  # type: ignore[no-any-return]

    async def check(self, key: _Key, *, now_ns: Optional[int] = None, **costs: int) -> Decision:
        """As ``RedisPolicy.check``."""
        return await self._apply("check", key, costs, now_ns)

    async def peek(self, key: _Key, *, now_ns: Optional[int] = None, **costs: int) -> Decision:
        """As ``RedisPolicy.peek``."""
        return await self._apply("peek", key, costs, now_ns)

    async def force(self, key: _Key, *, now_ns: Optional[int] = None, **costs: int) -> Decision:
        """As ``RedisPolicy.force``."""
        return await self._apply("force", key, costs, now_ns)

    async def refund(self, key: _Key, *, now_ns: Optional[int] = None, **costs: int) -> Decision:
        """As ``RedisPolicy.refund``."""
        return await self._apply("refund", key, costs, now_ns)

    async def reset(self, key: _Key, *, now_ns: Optional[int] = None) -> Decision:
        """As ``RedisPolicy.reset``."""
        return await self._apply("reset", key, None, now_ns)

    async def reserve(self, key: _Key, *, now_ns: Optional[int] = None, **estimate: int) -> RedisReservation:
        """As ``RedisPolicy.reserve``."""
        decided = await self._run(self._native.encode_reserve(key, estimate or None, now_ns), reserve=True)
        return self._reservation(decided)

    async def settle(self, reservation: RedisReservation, *, now_ns: Optional[int] = None, **actual: int) -> Decision:
        """As ``RedisPolicy.settle``."""
        plan = self._settle_plan(reservation, actual or None, now_ns)
        if isinstance(plan, Decision):
            return plan
        return await self._run(plan)  # type: ignore[no-any-return]
