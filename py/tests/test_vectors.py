"""Replays the shared decision vectors (testdata/vectors, format in testdata/README.md).

Single-limiter scenarios run on ``Bucket`` (one per key); keyed scenarios also on one
``Limiter`` holding every key; policy scenarios on one ``Policy`` (a fixed key when no step
names one). Time is set on a ``ManualClock`` before each step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from cellgate import NEVER_NS, Bucket, Decision, Limiter, ManualClock, Policy, Quota, SharedMemory

FIXED_POLICY_KEY = b"cellgate-vectors"
UNNAMED = object()


def u64(value: Any) -> int:
    return NEVER_NS if value == "never" else int(value)


def scenarios(vectors_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(vectors_dir.glob("*.json")):
        document = json.loads(path.read_text())
        assert document["format"] == 1, path
        found.extend((f"{path.name}:{scenario['name']}", scenario) for scenario in document["scenarios"])
    return found


def step_key(step: dict[str, Any]) -> Any:
    if "key" in step:
        return step["key"].encode()
    if "key_hex" in step:
        return bytes.fromhex(step["key_hex"])
    return UNNAMED


def quota_of(spec: dict[str, Any], name: Optional[str] = None) -> Quota:
    rate = spec["rate"] if "burst" not in spec else f"{spec['rate']} (burst {u64(spec['burst'])})"
    quota = Quota.parse(rate, name=name)
    assert (quota.rate, quota.period_ns, quota.burst) == (
        u64(spec["rate_cost"]),
        u64(spec["period_ns"]),
        u64(spec["burst_cost"]),
    )
    return quota


def fields(decision: Decision) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "limit": decision.limit,
        "remaining": decision.remaining,
        "retry_after_ns": decision.retry_after_ns,
        "reset_after_ns": decision.reset_after_ns,
    }


def expected(expect: dict[str, Any]) -> dict[str, Any]:
    return {
        "allowed": expect["allowed"],
        "limit": u64(expect["limit"]),
        "remaining": u64(expect["remaining"]),
        "retry_after_ns": u64(expect["retry_after_ns"]),
        "reset_after_ns": u64(expect["reset_after_ns"]),
    }


def replay_single(scenario: dict[str, Any], keyed_limiter: bool, store: Optional[SharedMemory] = None) -> int:
    """Replays on one Bucket per key, or on one Limiter (its table in ``store``, if given);
    returns the steps checked."""
    clock = ManualClock()
    quota = quota_of(scenario["quota"])
    algorithm = scenario["algorithm"]
    refill = scenario.get("refill")
    buckets: dict[Any, Bucket] = {}
    limiter = None
    if keyed_limiter:
        limiter = Limiter(
            quota,
            algorithm=algorithm,
            refill=refill,
            max_keys=scenario.get("max_keys", 1024),
            clock=clock,
            store=store,
        )
    checked = 0
    for index, step in enumerate(scenario["steps"]):
        clock.set_ns(u64(step["now_ns"]))
        key = step_key(step)
        op = step["op"]
        cost = u64(step["cost"]) if "cost" in step else 0
        if limiter is not None:
            target: Callable[..., Decision] = getattr(limiter, op)
            result = limiter.reset(key) if op == "reset" else target(key, cost)
            after_reset: Callable[[], Decision] = lambda: limiter.peek(key, 0)  # noqa: E731
        else:
            if key not in buckets:
                buckets[key] = Bucket(
                    quota,
                    algorithm=algorithm,
                    refill=refill,
                    initial_tokens=scenario.get("initial_tokens"),
                    clock=clock,
                )
            bucket = buckets[key]
            result = bucket.reset() if op == "reset" else getattr(bucket, op)(cost)
            after_reset = lambda: bucket.peek(0)  # noqa: E731
        if op == "reset":
            result = after_reset() if "expect" in step else None
        if "expect" in step:
            assert result is not None
            assert fields(result) == expected(step["expect"]), f"step {index}: {step}"
            checked += 1
    return checked


def replay_policy(scenario: dict[str, Any], store: Optional[SharedMemory] = None) -> int:
    clock = ManualClock()
    entries = scenario["policy"]
    dimensions = [f"d{entry['dimension']}" for entry in entries]
    names = [entry["name"] for entry in entries]
    policy = Policy(
        [(dimension, quota_of(entry["quota"], entry["name"])) for dimension, entry in zip(dimensions, entries)],
        max_keys=scenario.get("max_keys", 1024),
        clock=clock,
        store=store,
    )
    assert policy.quota_names == names
    dimension_names = policy.dimensions
    reservations: dict[str, Any] = {}
    checked = 0
    for index, step in enumerate(scenario["steps"]):
        clock.set_ns(u64(step["now_ns"]))
        key = step_key(step)
        key = FIXED_POLICY_KEY if key is UNNAMED else key
        op = step["op"]
        costs = {name: u64(cost) for name, cost in zip(dimension_names, step.get("costs", []))}
        if op == "reset":
            policy.reset(key)
            zero_costs = {name: 0 for name in dimension_names}
            result = policy.peek(key, **zero_costs) if "expect" in step else None
        elif op == "reserve":
            reservation = policy.reserve(key, **costs)
            if reservation:
                reservations[step["reservation"]] = reservation
            result = reservation.decision
        elif op == "settle":
            result = policy.settle(reservations.pop(step["reservation"]), **costs)
        else:
            result = getattr(policy, op)(key, **costs)
        if "expect" in step:
            expect = step["expect"]
            assert result is not None
            where = f"step {index}: {step}"
            assert result.allowed == expect["allowed"], where
            assert result.policy == names[expect["binding"]], where
            assert [fields(d) for d in result.decisions] == [expected(e) for e in expect["decisions"]], where
            checked += 1
    return checked


@pytest.mark.parametrize("store", ["in_process", "shared_memory"])
def test_vectors_replay(vectors_dir: Path, tmp_path: Path, store: str) -> None:
    """Every scenario; over ``store="shared_memory"`` the keyed limiters and policies keep
    their tables in a fresh shared-memory file each (``_allow_manual_clock``: one process
    replaying fixed times; processes sharing a table must read CLOCK_MONOTONIC)."""
    found = scenarios(vectors_dir)
    assert len(found) >= 30, "every vector file was read"
    replays = 0
    shared = 0

    def table() -> Optional[SharedMemory]:
        nonlocal shared
        if store == "in_process":
            return None
        shared += 1
        return SharedMemory(tmp_path / f"table-{shared}")._allow_manual_clock()

    for name, scenario in found:
        try:
            if "policy" in scenario:
                replays += replay_policy(scenario, table())
            else:
                if store == "in_process":
                    replays += replay_single(scenario, keyed_limiter=False)
                if scenario.get("keyed"):
                    replays += replay_single(scenario, keyed_limiter=True, store=table())
        except AssertionError as error:
            pytest.fail(f"{name}: {error}")
    assert replays > (100 if store == "in_process" else 20), replays
    assert shared == 0 or len(list(tmp_path.iterdir())) == shared
