#!/usr/bin/env python3
"""Converts testdata/headers/*.json (header vectors) into a line format that
ffi-c/tests/c/test_headers.c reads.

    headers_to_lines.py testdata/headers OUT.txt

Standard library only. Every line is whitespace-separated tokens; text (rates, names, keys,
header names and values, bodies) is hexadecimal so that it may hold spaces or quotes, "~"
being the empty text; "-" is "absent"; integers are decimal u64. The format (version 1), after
the line "cellgate-headers 1":

    F <file name>
    S <name> <refill 0|1> <on_full 0|1> <max_keys> <quota count> <dimension count>
    Q <rate hex> <burst or -> <name hex or -> <dimension>         one per quota
    T <op> <now_ns> <key hex> <costs>                              a step
        costs: one token per dimension, comma-separated: a number, or "d" (not named)
    E <allowed 0|1> <reason> <remaining> <retry_after_ns or -> <body hex or ->
    H <style> <count> then count pairs <name hex> <value hex>
    H <style> error invalid_name <index>           the style refuses quota <index>'s name
        style: ietf, legacy, legacy_epoch, anthropic, openai, draft_6, draft_7
    X                                                              the end of a scenario
    N <scenario count>                                             the last line

The JSON format is testdata/README.md's ("Header vectors"). Anything this script does not
know (a field, an op, a value) is an error, so a new kind of vector cannot pass unreplayed.
"""

import json
import sys
from pathlib import Path

U64_MAX = (1 << 64) - 1
OPS = {"check", "peek", "force", "refund", "reset"}
REASONS = {"limit", "table_full", "untracked"}
STYLES = ("ietf", "legacy", "legacy_epoch", "anthropic", "openai", "draft_6", "draft_7")
DEFAULT_MAX_KEYS = 100_000


def u64(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise ValueError(f"not a u64: {value!r}")
    return str(value)


def hexstr(text):
    return text.encode("utf-8").hex() if text else "~"


def only(mapping, allowed, what):
    unknown = set(mapping) - set(allowed)
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}")


def scenario_lines(scenario):
    only(scenario, {"name", "description", "limiter", "steps"}, "scenario")
    config = scenario["limiter"]
    only(config, {"quotas", "dimensions", "algorithm", "refill", "max_keys", "on_full"},
         scenario["name"])
    refill = {"greedy": 0, "interval": 1}[config.get("refill", "greedy")]
    algorithm = config.get("algorithm", "gcra")
    if algorithm not in ("gcra", "token_bucket") or (algorithm == "gcra" and refill == 1):
        raise ValueError(f"{scenario['name']}: algorithm {algorithm!r} with refill {refill}")
    on_full = {"deny": 0, "allow_untracked": 1}[config.get("on_full", "deny")]
    dimensions = config.get("dimensions", ["cost"])
    quotas = config["quotas"]
    lines = [
        f"S {scenario['name']} {refill} {on_full} {u64(config.get('max_keys', DEFAULT_MAX_KEYS))} "
        f"{len(quotas)} {len(dimensions)}"
    ]
    for quota in quotas:
        only(quota, {"rate", "burst", "name", "dimension"}, scenario["name"])
        burst = u64(quota["burst"]) if "burst" in quota else "-"
        name = hexstr(quota["name"]) if "name" in quota else "-"
        lines.append(f"Q {hexstr(quota['rate'])} {burst} {name} {u64(quota.get('dimension', 0))}")
    for step in scenario["steps"]:
        only(step, {"now_ns", "op", "key", "cost", "costs", "expect"}, scenario["name"])
        if step["op"] not in OPS:
            raise ValueError(f"{scenario['name']}: unknown op {step['op']!r}")
        if "costs" in step:
            unknown = set(step["costs"]) - set(dimensions)
            if unknown:
                raise ValueError(f"{scenario['name']}: unknown dimensions {sorted(unknown)}")
            costs = [step["costs"].get(name) for name in dimensions]
        else:
            costs = [step.get("cost")]
        if len(costs) != len(dimensions):
            raise ValueError(f"{scenario['name']}: {len(costs)} costs for {len(dimensions)} dimensions")
        costs = ",".join("d" if cost is None else u64(cost) for cost in costs)
        lines.append(f"T {step['op']} {u64(step['now_ns'])} {hexstr(step['key'])} {costs}")
        expect = step["expect"]
        only(expect, {"allowed", "reason", "remaining", "retry_after_ns", "headers", "body"},
             scenario["name"])
        if expect["reason"] not in REASONS:
            raise ValueError(f"{scenario['name']}: unknown reason {expect['reason']!r}")
        retry = "-" if expect["retry_after_ns"] is None else u64(expect["retry_after_ns"])
        body = "-" if expect["body"] is None else hexstr(expect["body"])
        lines.append(
            f"E {1 if expect['allowed'] else 0} {expect['reason']} {u64(expect['remaining'])} "
            f"{retry} {body}"
        )
        only(expect["headers"], STYLES, scenario["name"])
        for style in STYLES:
            pairs = expect["headers"][style]
            if isinstance(pairs, dict):
                only(pairs, {"error", "index"}, scenario["name"])
                if pairs["error"] != "invalid_name":
                    raise ValueError(f"{scenario['name']}: unknown error {pairs['error']!r}")
                lines.append(f"H {style} error invalid_name {u64(pairs['index'])}")
                continue
            tokens = [f"{hexstr(name)} {hexstr(value)}" for name, value in pairs]
            lines.append(" ".join([f"H {style} {len(pairs)}"] + tokens))
    lines.append("X")
    return lines


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    directory, out = Path(sys.argv[1]), sys.argv[2]
    files = sorted(directory.glob("*.json"))
    if not files:
        sys.exit(f"{directory}: no header vectors")
    lines = ["cellgate-headers 1"]
    count = 0
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        only(data, {"description", "format", "scenarios"}, path.name)
        if data.get("format") != 1:
            sys.exit(f"{path}: unknown format {data.get('format')!r}")
        lines.append(f"F {path.name}")
        for scenario in data["scenarios"]:
            lines.extend(scenario_lines(scenario))
            count += 1
    lines.append(f"N {count}")
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
