"""Replays the shared header vectors (testdata/headers, format in testdata/README.md "Header
vectors") through the public Python API: each scenario's limiter is built as a user would
(``Limiter`` for one dimension, ``Policy`` for named dimensions), every step is replayed on a
``ManualClock``, and the decision, its reason, every style's header bytes and the 429 body
must equal the file's exactly, with the tables in this process and in a shared-memory store
(``store=SharedMemory(...)``, a fresh file per scenario)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import pytest

from cellgate import Decision, InvalidArgument, Limiter, ManualClock, Policy, Quota, SharedMemory

NOW_UNIX_S = 1_700_000_000
"""The ``now_unix_s`` of the ``legacy_epoch`` and ``anthropic`` styles in every vector."""

STYLES = ("ietf", "legacy", "legacy_epoch", "anthropic", "openai", "draft_6", "draft_7")
"""The vectors' names of the styles; Python names two of them otherwise (``STYLE_NAMES``)."""

STYLE_NAMES = {"draft_6": "draft-6", "draft_7": "draft-7"}


def documents(headers_dir: Path) -> list[dict[str, Any]]:
    found = [json.loads(path.read_text()) for path in sorted(headers_dir.glob("*.json"))]
    assert found, headers_dir
    for document in found:
        assert document["format"] == 1
    return found


def build(config: dict[str, Any], store: Optional[SharedMemory] = None) -> tuple[Union[Limiter, Policy], ManualClock]:
    clock = ManualClock()
    quotas = [
        Quota.parse(
            entry["rate"] if "burst" not in entry else f"{entry['rate']} (burst {entry['burst']})",
            name=entry.get("name"),
        )
        for entry in config["quotas"]
    ]
    options: dict[str, Any] = {"clock": clock, "store": store}
    if "max_keys" in config:
        options["max_keys"] = config["max_keys"]
    if "on_full" in config:
        options["on_full"] = config["on_full"]
    if "dimensions" in config:
        names = config["dimensions"]
        pairs = [(names[entry.get("dimension", 0)], quota) for entry, quota in zip(config["quotas"], quotas)]
        return Policy(pairs, **options), clock
    for option in ("algorithm", "refill"):
        if option in config:
            options[option] = config[option]
    return Limiter(quotas, **options), clock


def apply(target: Union[Limiter, Policy], step: dict[str, Any]) -> Decision:
    key = step["key"].encode()
    op = step["op"]
    assert op in ("check", "peek", "force", "refund"), f"a step of op {op!r} is not replayed here"
    if isinstance(target, Policy):
        result: Decision = getattr(target, op)(key, **step.get("costs", {}))
        return result
    if "cost" in step:
        result = getattr(target, op)(key, step["cost"])
    else:
        result = getattr(target, op)(key)
    return result


def rendered(decision: Decision, style: str) -> Any:
    try:
        return [list(pair) for pair in decision.headers(STYLE_NAMES.get(style, style), now_unix=NOW_UNIX_S)]  # type: ignore[arg-type]
    except InvalidArgument as error:
        # A quota name that cannot be part of a header name: core refuses it, naming the quota.
        assert error.argument == "style"
        index = int(str(error).split("quota ", 1)[1].split(" ", 1)[0])
        return {"error": "invalid_name", "index": index}


def observed(decision: Decision) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "remaining": decision.remaining,
        "retry_after_ns": None if decision.allowed else decision.retry_after_ns,
        "headers": {style: rendered(decision, style) for style in STYLES},
        "body": None if decision.allowed else decision.error_body().decode(),
    }


def replay(document: dict[str, Any], stores: Optional[Iterator[SharedMemory]] = None) -> int:
    """Replays every scenario, each over the next of ``stores`` (None: in process); returns
    the steps checked. Raises AssertionError on the first difference, naming the scenario and
    step."""
    checked = 0
    for scenario in document["scenarios"]:
        target, clock = build(scenario["limiter"], None if stores is None else next(stores))
        assert (target.store is None) == (stores is None)
        for index, step in enumerate(scenario["steps"]):
            clock.set_ns(step["now_ns"])
            got = observed(apply(target, step))
            expect = step["expect"]
            assert set(expect["headers"]) == set(STYLES), f"{scenario['name']}: a style not replayed"
            assert got == expect, f"{scenario['name']}, step {index}:\n got {got}\nwant {expect}"
            checked += 1
    return checked


def shared_stores(directory: Path) -> Iterator[SharedMemory]:
    """A fresh shared-memory store per scenario. A ``ManualClock`` is refused with a shared
    store (processes sharing a table read one clock); ``_allow_manual_clock`` lets this one
    process replay the vectors' times."""
    index = 0
    while True:
        index += 1
        yield SharedMemory(directory / f"scenario-{index}")._allow_manual_clock()


@pytest.mark.parametrize("store", ["in_process", "shared_memory"])
def test_header_vectors_replay(headers_dir: Path, tmp_path: Path, store: str) -> None:
    stores = shared_stores(tmp_path) if store == "shared_memory" else None
    checked = sum(replay(document, stores) for document in documents(headers_dir))
    assert checked >= 50, checked
    if stores is not None:
        assert len(list(tmp_path.iterdir())) >= 10, "every scenario had its own shared table"


def corrupted(document: dict[str, Any]) -> dict[str, Any]:
    """A copy with one byte of one expected header value changed."""
    broken = copy.deepcopy(document)
    pair = broken["scenarios"][0]["steps"][0]["expect"]["headers"]["ietf"][1]
    value = pair[1]
    pair[1] = value[:-1] + ("0" if value[-1] != "0" else "1")
    return broken


def test_header_vectors_catch_a_corrupted_byte(headers_dir: Path) -> None:
    document = documents(headers_dir)[0]
    with pytest.raises(AssertionError, match="step 0"):
        replay(corrupted(document))
