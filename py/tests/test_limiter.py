"""Limiter, Bucket, Quota, ManualClock and Decision: the synchronous API."""

from __future__ import annotations

import gc
import inspect
import math
import sys
import tracemalloc

import pytest

import cellgate
from cellgate import (
    NEVER_NS,
    Bucket,
    Decision,
    InvalidArgument,
    InvalidArgumentType,
    InvalidRate,
    Limiter,
    ManualClock,
    Quota,
)


def test_burst_then_exact_refill() -> None:
    clock = ManualClock()
    limiter = Limiter("3/second", clock=clock)
    decision = limiter.check("user:42", cost=3)
    assert decision.allowed and bool(decision)
    assert (decision.limit, decision.remaining) == (3, 0)
    denied = limiter.check("user:42")
    assert not denied and not denied.allowed
    assert denied.retry_after_ns == 333_333_334
    assert denied.retry_after == pytest.approx(0.333333334)
    clock.advance_ns(denied.retry_after_ns - 1)
    assert not limiter.check("user:42")
    clock.advance_ns(1)
    assert limiter.check("user:42")


def test_block_ms_blocks_a_key_after_a_denial() -> None:
    clock = ManualClock()
    limiter = Limiter("5/minute", block_ms=15 * 60_000, clock=clock)
    assert limiter.block_ms == 15 * 60_000
    for _ in range(5):
        assert limiter.check("login:ann")
    denied = limiter.check("login:ann")
    # Fifteen minutes, then one emission interval (12 s) for the first request to fit.
    release_ns = (15 * 60 + 12) * 1_000_000_000
    assert not denied and denied.retry_after_ns == release_ns
    clock.advance_ns(60 * 1_000_000_000)
    during = limiter.check("login:ann")
    assert not during and during.retry_after_ns == release_ns - 60 * 1_000_000_000  # not extended
    assert limiter.check("login:bob")  # other keys are not blocked
    clock.set_ns(release_ns - 1)
    assert limiter.peek("login:ann").retry_after_ns == 1
    clock.set_ns(release_ns)
    assert limiter.check("login:ann")
    assert Limiter("5/minute").block_ms == 0


@pytest.mark.parametrize(
    ("block_ms", "error"),
    [(-1, InvalidArgument), (1.5, InvalidArgument), (math.nan, InvalidArgument), ("15m", InvalidArgumentType), (True, InvalidArgumentType), (2**64, InvalidArgument), (2**63, InvalidArgument)],
)
def test_block_ms_is_checked(block_ms: object, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        Limiter("5/minute", block_ms=block_ms)  # type: ignore[arg-type]
    assert info.value.argument == "block_ms"  # type: ignore[attr-defined]


def test_a_policy_blocks_each_denying_quota() -> None:
    clock = ManualClock()
    policy = cellgate.Policy({"requests": "2/second", "tokens": "100/minute"}, block_ms=10_000, clock=clock)
    assert policy.block_ms == 10_000
    assert policy.check("k", requests=1, tokens=10) and policy.check("k", requests=1, tokens=10)
    denied = policy.check("k", requests=1, tokens=10)
    assert not denied and denied.retry_after_ns == 10_500_000_000
    clock.advance_ns(10_500_000_000)
    assert policy.check("k", requests=1, tokens=10)


def test_keys_are_independent_and_typed_keys_are_their_bytes() -> None:
    clock = ManualClock()
    limiter = Limiter("1/minute", clock=clock)
    assert limiter.check("a")
    assert not limiter.check("a")
    assert not limiter.check(b"a"), "a str key is its UTF-8 bytes"
    assert limiter.check(42)
    assert not limiter.check("42"), "an int key is its decimal text"
    assert limiter.check(-7) and not limiter.check(b"-7")
    assert limiter.check(2**100) and not limiter.check(str(2**100))
    assert limiter.check("é") and not limiter.check("é".encode())
    assert limiter.check(b"") and limiter.check(b"\x00") and limiter.check(b"a\x00")


def test_str_subclass_keys_decide_as_str() -> None:
    """An exact str takes the key fast path (its type pointer); a str subclass the general
    path: both are the string's UTF-8."""

    class Text(str):
        pass

    limiter = Limiter("1/minute", clock=ManualClock())
    assert limiter.check(Text("é")) and not limiter.check("é") and not limiter.check("é".encode())
    assert limiter.check("x") and not limiter.check(Text("x"))
    assert limiter.check(Text("")) and not limiter.check("")


def test_decision_fields_headers_and_body() -> None:
    clock = ManualClock()
    limiter = Limiter("10/second", clock=clock)
    allowed = limiter.check("k", 4)
    assert (allowed.limit, allowed.remaining, allowed.retry_after, allowed.retry_after_ns) == (10, 6, 0.0, 0)
    assert allowed.reset_after_ns == 400_000_000 and allowed.reset_after == pytest.approx(0.4)
    assert allowed.policy == "10-in-1s"
    assert allowed.headers() == [("RateLimit-Policy", '"10-in-1s";q=10;w=1'), ("RateLimit", '"10-in-1s";r=6;t=1')]
    denied = limiter.check("k", 7)
    assert denied.retry_after_ns == 100_000_000
    assert denied.headers("legacy") == [
        ("X-RateLimit-Limit", "10"),
        ("X-RateLimit-Remaining", "6"),
        ("X-RateLimit-Reset", "1"),
        ("Retry-After", "1"),
    ]
    assert denied.headers("legacy_epoch", now_unix=1_700_000_000)[2] == ("X-RateLimit-Reset", "1700000001")
    assert denied.error_body() == b'{"error":"rate_limited","retry_after":1}'
    assert "allowed=False" in repr(denied)
    never = limiter.check("k", 11)
    assert never.retry_after == math.inf and never.retry_after_ns == NEVER_NS
    assert never.error_body() == b'{"error":"rate_limited","retry_after":null}'
    assert all(name != "Retry-After" for name, _ in never.headers())
    with pytest.raises(InvalidArgument) as info:
        denied.headers("fancy")  # type: ignore[arg-type]
    assert info.value.argument == "style"


def test_named_quota_and_burst() -> None:
    limiter = Limiter(Quota.per_minute(100, burst=5, name="api"), clock=ManualClock())
    decision = limiter.check("k")
    assert (decision.limit, decision.remaining, decision.policy) == (5, 4, "api")
    limiter = Limiter("100/minute", burst=20, clock=ManualClock())
    assert limiter.check("k").limit == 20
    assert limiter.quotas == [Quota.parse("100/minute (burst 20)")]


def test_several_quotas_all_or_nothing() -> None:
    clock = ManualClock()
    limiter = Limiter("2/second; 3/day", clock=clock)
    assert limiter.check("k", 2)
    clock.advance(1)
    denied = limiter.check("k", 2)
    assert not denied and denied.policy == "3-in-1d"
    assert [d.limit for d in denied.decisions] == [2, 3]
    assert denied.decisions[0].remaining == 2, "nothing was charged on the per-second quota"
    assert limiter.check("k", 1)
    headers = dict(denied.headers())
    assert headers["RateLimit-Policy"] == '"2-in-1s";q=2;w=1,"3-in-1d";q=3;w=86400'
    assert int(headers["Retry-After"]) > 3600
    with pytest.raises(InvalidArgument) as info:
        Limiter("1/s; 2/s", burst=3)
    assert info.value.argument == "burst"
    with pytest.raises(InvalidArgument):
        Limiter(["1/s"] * 9)


def test_token_bucket_interval_refill() -> None:
    clock = ManualClock()
    limiter = Limiter("2/second", algorithm="token_bucket", refill="interval", clock=clock)
    assert (limiter.algorithm, limiter.refill) == ("token_bucket", "interval")
    assert limiter.check("k", 2)
    clock.advance(0.5)
    denied = limiter.check("k")
    assert denied.retry_after_ns == 500_000_000, "interval refill waits for the boundary"
    clock.advance(0.5)
    assert limiter.check("k", 2)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (True, InvalidArgumentType),
        (False, InvalidArgumentType),
        (-1, InvalidArgument),
        (1.5, InvalidArgument),
        (-0.5, InvalidArgument),
        (float("nan"), InvalidArgument),
        (float("inf"), InvalidArgument),
        (2**64, InvalidArgument),
        (1e20, InvalidArgument),
        ("1", InvalidArgumentType),
    ],
)
def test_bad_cost_is_a_typed_error_and_changes_nothing(bad: object, error: type[Exception]) -> None:
    clock = ManualClock()
    limiter = Limiter("2/second", clock=clock)
    policy_limiter = Limiter("2/second; 5/minute", clock=clock)
    for lim in (limiter, policy_limiter):
        for op in (lim.check, lim.peek, lim.force, lim.refund):
            with pytest.raises(error) as info:
                op("k", bad)  # type: ignore[arg-type]
            assert info.value.argument == "cost"  # type: ignore[attr-defined]
            assert "cost" in str(info.value)
        assert lim.peek("k", 0).remaining == 2
    assert isinstance(InvalidArgument("x"), ValueError)
    assert isinstance(InvalidArgumentType("x"), TypeError)


def test_integral_float_cost_is_accepted() -> None:
    limiter = Limiter("5/second", clock=ManualClock())
    assert limiter.check("k", 2.0).remaining == 3


@pytest.mark.parametrize("bad", [1.5, None, [1], True, bytearray(b"k")])
def test_bad_key_type(bad: object) -> None:
    limiter = Limiter("1/second", clock=ManualClock())
    with pytest.raises(InvalidArgumentType) as info:
        limiter.check(bad)  # type: ignore[arg-type]
    assert info.value.argument == "key"


def test_unencodable_str_key() -> None:
    class Text(str):
        pass

    limiter = Limiter("1/second", clock=ManualClock())
    for key in ("\ud800", Text("a\udfff")):
        with pytest.raises(InvalidArgument) as info:
            limiter.check(key)
        assert info.value.argument == "key"
    assert limiter.check("k") and not limiter.check("k"), "after the errors, a key works"


@pytest.mark.parametrize(
    ("rate", "offset"),
    [("10/fortnight", 3), ("ten per second", 0), ("10/s;", 5), ("", 0), ("0/second", 0)],
)
def test_bad_rate_string(rate: str, offset: int) -> None:
    with pytest.raises(InvalidRate) as info:
        Limiter(rate)
    assert info.value.argument == "rate" and info.value.rate == rate
    assert info.value.offset == offset
    assert isinstance(info.value, ValueError)


def test_constructor_arguments_are_checked() -> None:
    cases: list[tuple[dict[str, object], str, type[Exception]]] = [
        ({"algorithm": "leaky"}, "algorithm", InvalidArgument),
        ({"refill": "interval"}, "refill", InvalidArgument),
        ({"algorithm": "token_bucket", "refill": "sometimes"}, "refill", InvalidArgument),
        ({"max_keys": 0}, "max_keys", InvalidArgument),
        ({"max_keys": -1}, "max_keys", InvalidArgument),
        ({"max_keys": True}, "max_keys", InvalidArgumentType),
        ({"burst": 0}, "burst", InvalidArgument),
        ({"burst": 1.5}, "burst", InvalidArgument),
        ({"clock": "monotonic"}, "clock", InvalidArgumentType),
    ]
    for kwargs, argument, error in cases:
        with pytest.raises(error) as info:
            Limiter("1/second", **kwargs)  # type: ignore[arg-type]
        assert info.value.argument == argument, kwargs  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgumentType) as info:
        Limiter(10)  # type: ignore[arg-type]
    assert info.value.argument == "rate"


def test_quota() -> None:
    quota = Quota(500, 7 * 86400, burst=50, name="weekly")
    assert (quota.rate, quota.period_ns, quota.burst, quota.name) == (500, 7 * 86_400_000_000_000, 50, "weekly")
    assert quota.period == 604800.0 and quota.header_name == "weekly"
    assert Quota.parse("500/7 days (burst 50)", name="weekly") == quota
    assert Quota(3, 0.5).period_ns == 500_000_000
    assert Quota.parse("10 per minute").header_name == "10-in-1min"
    assert [q.rate for q in Quota.parse_many("10/s; 1000/day")] == [10, 1000]
    assert str(Quota.per_second(3)) == "3/second"
    assert eval(repr(quota), {"Quota": Quota}) == quota
    assert len({Quota.per_hour(1), Quota.parse("1/hour")}) == 1
    with pytest.raises(InvalidArgument) as info:
        Quota(1, 0)
    assert info.value.argument == "period"
    with pytest.raises(InvalidArgument) as info:
        Quota(1, float("nan"))
    assert info.value.argument == "period"
    with pytest.raises(InvalidArgument) as info:
        Quota(1, name="bad\nname")
    assert info.value.argument == "name"
    with pytest.raises(InvalidRate):
        Quota.parse("1/s; 2/s")


def test_manual_clock() -> None:
    clock = ManualClock(start_ns=5)
    clock.advance(1)
    clock.advance(0.25)
    clock.advance_ns(10)
    assert clock.now_ns() == 5 + 1_250_000_000 + 10
    clock.set_ns(3)
    assert clock.now_ns() == 3
    for bad, error in [(-1, InvalidArgument), (float("nan"), InvalidArgument), (float("inf"), InvalidArgument), (True, InvalidArgumentType)]:
        with pytest.raises(error) as info:
            clock.advance(bad)  # type: ignore[arg-type]
        assert info.value.argument == "seconds"  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument):
        clock.advance_ns(-1)
    with pytest.raises(InvalidArgument):
        ManualClock(2**64)
    assert clock.now_ns() == 3


def test_backward_clock_is_no_time_passing() -> None:
    clock = ManualClock(10_000_000_000)
    limiter = Limiter("1/second", clock=clock)
    assert limiter.check("k")
    clock.set_ns(0)
    denied = limiter.check("k")
    assert not denied and denied.retry_after_ns == 11_000_000_000


def test_peek_force_refund_reset() -> None:
    clock = ManualClock()
    limiter = Limiter("4/second", clock=clock)
    assert limiter.peek("k", 4).remaining == 4
    forced = limiter.force("k", 6)
    assert not forced.allowed and forced.remaining == 0
    assert forced.retry_after_ns == 750_000_000, "debt of 2 units: wait until one fits"
    refunded = limiter.refund("k", 10)
    assert refunded.allowed and refunded.remaining == 4
    limiter.check("k", 4)
    limiter.reset("k")
    assert limiter.check("k", 4)


def test_bucket() -> None:
    clock = ManualClock()
    bucket = Bucket("2/second", algorithm="token_bucket", initial_tokens=1, clock=clock)
    assert bucket.check() and not bucket.check()
    assert bucket.quota == Quota.parse("2/second")
    with pytest.raises(InvalidArgument) as info:
        Bucket("1/s; 2/s")
    assert info.value.argument == "rate"
    with pytest.raises(InvalidArgument) as info:
        Bucket("2/s", algorithm="token_bucket", initial_tokens=3)
    assert info.value.argument == "initial_tokens"
    with pytest.raises(InvalidArgument) as info:
        Bucket("2/s", initial_tokens=1)
    assert info.value.argument == "initial_tokens"


def test_table_full_refuses_without_evicting() -> None:
    clock = ManualClock()
    limiter = Limiter("1/hour", max_keys=1, clock=clock)
    decisions = [limiter.check(index) for index in range(100)]
    admitted = [decision for decision in decisions if decision.reason == "limit"]
    assert 1 <= len(admitted) <= 16 and all(admitted)
    full = [decision for decision in decisions if decision.reason == "table_full"]
    assert len(full) == 100 - len(admitted) and not any(full)
    assert not limiter.check(0), "a flood of new keys never resets a live key"


def test_decision_equality_and_types() -> None:
    limiter = Limiter("5/second", clock=ManualClock())
    assert limiter.peek("a") == limiter.peek("b")
    assert isinstance(limiter.check("a"), Decision)
    assert cellgate.__version__


def test_decision_is_an_immutable_value_type() -> None:
    """Decision is a hand-built type (decision_type.rs): it must behave as the frozen pyo3
    class it replaced, and hold and leak nothing."""
    clock = ManualClock()
    limiter = Limiter("2/second", clock=clock)
    first, second, denied = limiter.check("a"), limiter.check("a"), limiter.check("a")
    assert first == limiter.check("b") and not first != limiter.check("c")
    assert first != second and not first == second and first == first
    assert first != 1 and not first == "x"
    several = Limiter("2/second; 3/minute", clock=clock).check("a")
    assert several != first and several.decisions[0] != several.decisions[1]
    assert all(type(each) is Decision for each in several.decisions)
    with pytest.raises(TypeError):
        first < second  # type: ignore[operator]
    with pytest.raises(TypeError, match="unhashable"):
        hash(first)
    with pytest.raises(TypeError, match="cannot create 'cellgate.Decision' instances"):
        Decision()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        type("Sub", (Decision,), {})
    with pytest.raises(AttributeError):
        first.allowed = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        first.extra = 1  # type: ignore[attr-defined]
    assert (type(first).__module__, type(first).__qualname__) == ("cellgate", "Decision")
    assert "allowed" in (Decision.__doc__ or "") and "admitted" in (Decision.allowed.__doc__ or "")
    assert str(inspect.signature(first.headers)) == "(style='ietf', now_unix=None)"
    assert denied.headers(style="legacy_epoch", now_unix=None)[0] == ("X-RateLimit-Limit", "2")
    assert denied.headers("legacy_epoch", 10) == denied.headers(now_unix=10, style="legacy_epoch")
    for args, kwargs, error in [
        (("ietf", None, 1), {}, TypeError),
        ((), {"colour": "red"}, TypeError),
        (("ietf",), {"style": "ietf"}, TypeError),
        ((1,), {}, TypeError),
        (("legacy_epoch", "now"), {}, InvalidArgumentType),
        (("nope",), {}, InvalidArgument),
    ]:
        with pytest.raises(error):
            denied.headers(*args, **kwargs)
    with pytest.raises(TypeError):
        denied.error_body(1)  # type: ignore[call-arg]
    assert not gc.is_tracked(first), "a Decision holds no Python object: not GC-tracked"
    # Every decision gives back its memory and its reference to the type.
    type_references = sys.getrefcount(Decision)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(10_000):
            limiter.check(index % 10)
            several.decisions
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 1_000, f"{held} bytes held after 10,000 decisions"
    assert sys.getrefcount(Decision) == type_references


def test_call_forms_of_the_fast_methods() -> None:
    clock = ManualClock()
    limiter = Limiter("5/second", clock=clock)
    assert limiter.check(key="k", cost=2).remaining == 3
    assert limiter.peek("k", cost=3).allowed
    assert limiter.force(cost=1, key="k").remaining == 2
    assert limiter.refund("k", 1).remaining == 3
    assert limiter.check.__text_signature__ == "($self, key, cost=1)"
    assert "atomically" in (Limiter.check.__doc__ or "")
    for args, kwargs, message in [
        ((), {}, "missing required argument 'key'"),
        (("k", 1, 2), {}, "at most 2 arguments"),
        (("k",), {"weight": 1}, "unexpected keyword argument"),
        (("k",), {"key": "j"}, "multiple values"),
    ]:
        with pytest.raises(TypeError, match=message):
            limiter.check(*args, **kwargs)
    assert limiter.peek("k", 0).remaining == 3, "no call form changed state"
    with pytest.raises(TypeError):
        Limiter.check(object(), "k")  # type: ignore[arg-type]


LONE_SURROGATE = "\ud800"


@pytest.mark.parametrize(
    ("call", "argument", "error"),
    [
        (lambda: Limiter(LONE_SURROGATE), "rate", InvalidArgument),
        (lambda: Limiter([f"1/s{LONE_SURROGATE}"]), "rate", InvalidArgument),
        (lambda: Quota.parse(LONE_SURROGATE), "text", InvalidArgument),
        (lambda: Quota.parse_many(LONE_SURROGATE), "text", InvalidArgument),
        (lambda: Quota(1, name=LONE_SURROGATE), "name", InvalidArgument),
        (lambda: Quota.per_second(1, name=LONE_SURROGATE), "name", InvalidArgument),
        (lambda: Quota.parse("1/s", name=LONE_SURROGATE), "name", InvalidArgument),
        (lambda: Quota.per_second(1).named(LONE_SURROGATE), "name", InvalidArgument),
        (lambda: cellgate.client_key(LONE_SURROGATE), "address", InvalidArgument),
        (lambda: Limiter("1/s", algorithm=LONE_SURROGATE), "algorithm", InvalidArgument),
        (lambda: Limiter("1/s", algorithm=None), "algorithm", InvalidArgumentType),
        (lambda: Bucket("1/s", algorithm=None), "algorithm", InvalidArgumentType),
        (lambda: Limiter("1/s", algorithm="token_bucket", refill=1), "refill", InvalidArgumentType),
        (lambda: Bucket("1/s", algorithm="token_bucket", refill=1), "refill", InvalidArgumentType),
        (lambda: Quota(1, name=1), "name", InvalidArgumentType),
        (lambda: Quota.per_second(1).named(None), "name", InvalidArgumentType),
        (lambda: Quota.parse(b"1/s"), "text", InvalidArgumentType),
        (lambda: cellgate.client_key(b"127.0.0.1"), "address", InvalidArgumentType),
        (lambda: Limiter("1/s").check("k").headers(style=None), "style", InvalidArgumentType),
        (lambda: Limiter("1/s").check("k").headers(style=LONE_SURROGATE), "style", InvalidArgument),
        (lambda: Quota(2**53 + 1), "rate", InvalidArgument),
        (lambda: Quota.per_second(2**53 + 1), "rate", InvalidArgument),
        (lambda: Quota.per_second(1, burst=2**53 + 1), "burst", InvalidArgument),
    ],
)
def test_every_bad_argument_is_a_typed_error_naming_it(call: object, argument: str, error: type[Exception]) -> None:
    """Never a bare TypeError or UnicodeEncodeError, and never the name of an argument that was
    not given (a rate alone that cannot be represented is the rate's fault, not the burst's)."""
    with pytest.raises(error) as info:
        call()  # type: ignore[operator]
    assert type(info.value) is error, repr(info.value)
    assert info.value.argument == argument  # type: ignore[attr-defined]
    assert str(info.value).startswith(f"{argument}: ")


def test_a_large_rate_with_a_small_burst_is_a_quota() -> None:
    quota = Quota(2**53 + 1, burst=1)
    assert (quota.rate, quota.burst) == (2**53 + 1, 1)


def test_quota_names_shown_in_headers_are_unique() -> None:
    for rate in (["10/s", "10/s"], "10/s; 10/second", [Quota.per_second(5, name="x"), Quota.per_minute(9, name="x")]):
        with pytest.raises(InvalidArgument) as info:
            Limiter(rate)
        assert info.value.argument == "rate" and "named" in str(info.value), rate
    with pytest.raises(InvalidArgument) as info:
        Limiter(["10/s", Quota.per_minute(600, name="10-in-1s")])
    assert info.value.argument == "rate", "a given name may not repeat a default one"
    limiter = Limiter([Quota.per_second(10, name="a"), Quota.per_second(10, name="b")])
    assert dict(limiter.check("k").headers())["RateLimit-Policy"] == '"a";q=10;w=1,"b";q=10;w=1'
