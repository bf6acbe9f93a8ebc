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
    assert policy.check("u", requests=1, input_tokens=9_000)
    denied = policy.check("u", requests=1, input_tokens=2_000)
    assert not denied and denied.policy == "input_tokens"
    assert denied.decisions[0].remaining == 59, "the request was not charged"
    assert policy.check("u", requests=1, input_tokens=1_000)
    assert policy.check("v", requests=1, input_tokens=10_000), "keys are independent"


def test_reserve_then_settle_above_and_below() -> None:
    clock = ManualClock()
    policy = make(clock)
    reservation = policy.reserve("u", requests=1, output_tokens=1_500)
    assert reservation and reservation.pending
    assert reservation.decision.allowed and reservation.decision is reservation.decision
    assert reservation.estimate == [("requests", 1), ("input_tokens", 0), ("output_tokens", 1_500)]
    assert not policy.check("u", output_tokens=600), "the estimate is held"
    settled = policy.settle(reservation, output_tokens=400)
    assert settled.decisions[3].remaining == 1_600
    assert not reservation.pending
    with pytest.raises(InvalidArgument) as info:
        policy.settle(reservation)
    assert info.value.argument == "reservation" and "already settled" in str(info.value)
    # Above the estimate: the excess is charged regardless, into debt.
    reservation = policy.reserve("u", requests=1, output_tokens=100)
    settled = policy.settle(reservation, output_tokens=3_000)
    assert not settled.allowed and settled.decisions[3].remaining == 0
    assert not policy.check("u", requests=1, output_tokens=1)
    assert policy.check("u", requests=1), "a dimension asked for nothing cannot refuse"


def test_refused_reservation_cannot_be_settled() -> None:
    policy = make(ManualClock())
    reservation = policy.reserve("u", output_tokens=5_000)
    assert not reservation and not reservation.allowed and not reservation.decision
    with pytest.raises(InvalidArgument, match="refused"):
        policy.settle(reservation)
    other = make(ManualClock())
    with pytest.raises(InvalidArgument, match="another policy"):
        other.settle(policy.reserve("u", requests=1))


def test_bad_costs_change_nothing() -> None:
    policy = make(ManualClock())
    with pytest.raises(InvalidArgument) as info:
        policy.check("u", tokens=1)
    assert info.value.argument == "tokens"
    with pytest.raises(InvalidArgument) as info:
        policy.check("u", requests=1, input_tokens=-5)
    assert info.value.argument == "input_tokens"
    with pytest.raises(InvalidArgumentType):
        policy.check("u", requests=True)
    assert policy.peek("u", requests=60).allowed


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
