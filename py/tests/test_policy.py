"""Policy: named dimensions, all-or-nothing, reserve and settle."""

from __future__ import annotations

import pytest

from cellgate import InvalidArgument, InvalidArgumentType, ManualClock, Policy, Quota


def make(clock: ManualClock) -> Policy:
    return Policy(
        {
            "requests": "60/minute; 1000/day",
            "input_tokens": "10000/minute",
            "output_tokens": Quota.per_minute(2000, name="out"),
        },
        clock=clock,
    )


def test_names_and_dimensions() -> None:
    policy = make(ManualClock())
    assert policy.dimensions == ["requests", "input_tokens", "output_tokens"]
    assert policy.quota_names == ["requests-60-in-1min", "requests-1000-in-1d", "input_tokens", "out"]


def test_all_or_nothing() -> None:
    clock = ManualClock()
    policy = make(clock)
    assert policy.check("u", requests=1, input_tokens=9_000, output_tokens=0)
    denied = policy.check("u", requests=1, input_tokens=2_000, output_tokens=0)
    assert not denied and denied.policy == "input_tokens"
    assert denied.decisions[0].remaining == 59, "the request was not charged"
    assert policy.check("u", requests=1, input_tokens=1_000, output_tokens=0)
    assert policy.check("v", requests=1, input_tokens=10_000, output_tokens=0), "keys are independent"


def test_reserve_then_settle_above_and_below() -> None:
    clock = ManualClock()
    policy = make(clock)
    reservation = policy.reserve("u", requests=1, input_tokens=0, output_tokens=1_500)
    assert reservation and reservation.pending
    assert reservation.decision.allowed and reservation.decision is reservation.decision
    assert reservation.estimate == [("requests", 1), ("input_tokens", 0), ("output_tokens", 1_500)]
    assert not policy.check("u", requests=0, input_tokens=0, output_tokens=600), "the estimate is held"
    settled = policy.settle(reservation, output_tokens=400)
    assert settled.decisions[3].remaining == 1_600
    assert not reservation.pending
    with pytest.raises(InvalidArgument) as info:
        policy.settle(reservation)
    assert info.value.argument == "reservation" and "already settled" in str(info.value)
    # Above the estimate: the excess is charged regardless, into debt.
    reservation = policy.reserve("u", requests=1, input_tokens=0, output_tokens=100)
    settled = policy.settle(reservation, output_tokens=3_000)
    assert not settled.allowed and settled.decisions[3].remaining == 0
    assert not policy.check("u", requests=1, input_tokens=0, output_tokens=1)
    assert policy.check("u", requests=1, input_tokens=0, output_tokens=0), "a dimension asked for 0 cannot refuse"


def test_refused_reservation_cannot_be_settled() -> None:
    policy = make(ManualClock())
    reservation = policy.reserve("u", requests=1, input_tokens=0, output_tokens=5_000)
    assert not reservation and not reservation.allowed and not reservation.decision
    with pytest.raises(InvalidArgument, match="refused"):
        policy.settle(reservation)
    other = make(ManualClock())
    admitted = policy.reserve("u", requests=1, input_tokens=0, output_tokens=0)
    with pytest.raises(InvalidArgument, match="another policy") as info:
        other.settle(admitted)
    assert info.value.argument == "reservation"
    assert admitted.pending, "refused by the other policy before core's settle consumes it"
    assert policy.settle(admitted, requests=0) is not None and not admitted.pending


def test_policy_is_one_core_limiter_with_named_dimensions() -> None:
    policy = Policy({"requests": "60/minute; 1000/day", "tokens": Quota.per_minute(100)}, max_keys=50)
    assert policy.quota_names == ["requests-60-in-1min", "requests-1000-in-1d", "tokens"]
    assert policy.max_keys == 50 and policy.on_full == "deny"
    assert len(policy.stats()) == 3
    decision = policy.check("u", requests=1, tokens=10)
    assert decision.reason == "limit" and [d.reason for d in decision.decisions] == ["limit"] * 3
    with pytest.raises(InvalidArgument) as info:
        Policy({"a": "1/s", "b": "1/s"}, max_keys=0)
    assert info.value.argument == "max_keys"
    with pytest.raises(InvalidArgument) as info:
        Policy({"a": ["1/s"] * 5, "b": ["2/s", "3/s", "4/s", "5/s"]})
    assert info.value.argument == "dimensions" and "at most 8 quotas" in str(info.value)


def test_bad_costs_change_nothing() -> None:
    policy = make(ManualClock())
    with pytest.raises(InvalidArgument) as info:
        policy.check("u", tokens=1)
    assert info.value.argument == "tokens"
    with pytest.raises(InvalidArgument) as info:
        policy.check("u", requests=1, input_tokens=-5)
    assert info.value.argument == "input_tokens"
    with pytest.raises(InvalidArgumentType):
        policy.check("u", requests=True, input_tokens=0, output_tokens=0)
    assert policy.peek("u", requests=60, input_tokens=0, output_tokens=0).allowed


def test_bad_construction() -> None:
    with pytest.raises(InvalidArgumentType):
        Policy("60/minute")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        Policy({})
    with pytest.raises(InvalidArgument):
        Policy({"requests": ["1/s"] * 9})
    with pytest.raises(InvalidArgument):
        Policy({"bad name\n": "1/s"})
    for reserved in ("key", "reservation"):
        with pytest.raises(InvalidArgument, match="cannot name a dimension"):
            Policy({reserved: "1/s"})


def test_one_dimension_calls_cost_one_by_default() -> None:
    policy = Policy({"requests": "3/s"}, clock=ManualClock())
    assert [policy.check("k").allowed for _ in range(5)] == [True, True, True, False, False]
    reservation = policy.reserve("r")
    assert reservation.estimate == [("requests", 1)]
    assert policy.peek("r").remaining == 2
    several_quotas = Policy({"requests": "2/s; 100/day"}, clock=ManualClock())
    assert [several_quotas.check("k").allowed for _ in range(3)] == [True, True, False]


def test_several_dimensions_need_every_cost() -> None:
    policy = make(ManualClock())
    calls = [policy.check, policy.peek, policy.force, policy.refund, policy.reserve]
    for call in calls:
        with pytest.raises(InvalidArgument) as info:
            call("u", requests=1, output_tokens=5)
        assert info.value.argument == "input_tokens", call
        assert "input_tokens" in str(info.value) and "no cost" in str(info.value)
        with pytest.raises(InvalidArgument) as info:
            call("u")
        assert info.value.argument == "requests", "the first dimension missing"
    assert policy.peek("u", requests=60, input_tokens=0, output_tokens=0).allowed, "nothing was charged"


def test_settle_completes_costs_from_the_estimate() -> None:
    policy = make(ManualClock())
    reservation = policy.reserve("u", requests=1, input_tokens=100, output_tokens=50)
    settled = policy.settle(reservation)
    assert [d.remaining for d in settled.decisions] == [59, 999, 9_900, 1_950], "the estimate, exactly"
    reservation = policy.reserve("u", requests=1, input_tokens=100, output_tokens=50)
    settled = policy.settle(reservation, output_tokens=0)
    assert [d.remaining for d in settled.decisions] == [58, 998, 9_800, 1_950]


def test_bad_settle_and_dimension_arguments() -> None:
    policy = make(ManualClock())
    with pytest.raises(InvalidArgumentType) as type_info:
        policy.settle("x")  # type: ignore[arg-type]
    assert type_info.value.argument == "reservation"
    with pytest.raises(InvalidArgument) as info:
        Policy({"\ud800": "1/s"})
    assert info.value.argument == "dimensions"
    with pytest.raises(InvalidArgument) as info:
        policy.check("u", **{"\ud800": 1})
    assert type(info.value) is InvalidArgument


def test_quota_names_are_unique() -> None:
    with pytest.raises(InvalidArgument) as info:
        Policy({"requests": ["1/s", "1/s"]})
    assert info.value.argument == "dimensions" and "requests-1-in-1s" in str(info.value)
    with pytest.raises(InvalidArgument) as info:
        Policy({"a": "1/s", "b": Quota.per_second(1, name="a")})
    assert info.value.argument == "dimensions"
