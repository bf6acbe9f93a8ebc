#!/usr/bin/env python3
"""Converts testdata/vectors/*.json into a line format that ffi-c/tests/c/test_vectors.c reads.

Standard library only. Every line is whitespace-separated tokens; text (names, rate strings,
keys) is hexadecimal so that it may hold spaces or NUL bytes, "~" being the empty text (the
empty key); "-" is "absent"; integers are
decimal u64 ("never" becomes 18446744073709551615). The format (version 1):

    F <file name>
    S <name> <gcra|token_bucket> <refill 0|1> <initial_tokens or -> <keyed 0|1> <max_keys>
    P <name> <entry count> <max_keys> <keyed 0|1>       a policy scenario, then its entries:
    E <name hex> <dimension>
    Q <rate hex> <burst or -> <rate_cost> <period_ns> <burst_cost>   the quota (after S or E)
    T <op> <now_ns> <key hex or -> <reservation hex or -> <costs, comma-separated, or -> <expect>
        single-limiter expect: - | <allowed 0|1> <limit> <remaining> <retry_after_ns> <reset_after_ns>
        policy expect:         - | <allowed 0|1> <binding> <count> then count x 5 numbers
    X                                                    the end of a scenario
    N <scenario count>                                   the last line

The reader checks the version line "cellgate-vectors 1" first. The JSON rules (integers as
numbers up to 2^53 - 1 or as decimal strings, "never") are those of testdata/README.md.
"""

import json
import sys
from pathlib import Path

U64_MAX = (1 << 64) - 1
MAX_SAFE = (1 << 53) - 1


def u64(value):
    """Reads a vector integer: a JSON number up to 2^53 - 1, a decimal string, or "never"."""
    if value == "never":
        return U64_MAX
    if isinstance(value, bool):
        raise ValueError(f"boolean where an integer was expected: {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= MAX_SAFE:
            raise ValueError(f"JSON number out of range: {value}")
        return value
    if isinstance(value, str) and value.isdigit() and (value == "0" or value[0] != "0"):
        number = int(value)
        if number > U64_MAX:
            raise ValueError(f"integer above u64: {value}")
        return number
    raise ValueError(f"not a vector integer: {value!r}")


def hexstr(text):
    return text.encode("utf-8").hex() if text else "~"


def key_of(step):
    if "key" in step:
        return hexstr(step["key"]) if step["key"] else "~"
    if "key_hex" in step:
        return step["key_hex"] or "~"
    return "-"


def quota_line(quota):
    burst = str(u64(quota["burst"])) if "burst" in quota else "-"
    return (
        f"Q {hexstr(quota['rate'])} {burst} {u64(quota['rate_cost'])} "
        f"{u64(quota['period_ns'])} {u64(quota['burst_cost'])}"
    )


def decision_tokens(expect):
    return [
        "1" if expect["allowed"] else "0",
        str(u64(expect["limit"])),
        str(u64(expect["remaining"])),
        str(u64(expect["retry_after_ns"])),
        str(u64(expect["reset_after_ns"])),
    ]


def step_line(step, policy):
    if policy:
        costs = ",".join(str(u64(c)) for c in step["costs"]) if "costs" in step else "-"
    else:
        costs = str(u64(step["cost"])) if "cost" in step else "-"
    reservation = hexstr(step["reservation"]) if "reservation" in step else "-"
    tokens = ["T", step["op"], str(u64(step["now_ns"])), key_of(step), reservation, costs]
    expect = step.get("expect")
    if expect is None:
        tokens.append("-")
    elif policy:
        decisions = expect["decisions"]
        tokens += ["1" if expect["allowed"] else "0", str(expect["binding"]), str(len(decisions))]
        for decision in decisions:
            tokens += decision_tokens(decision)
    else:
        tokens += decision_tokens(expect)
    return " ".join(tokens)


def convert(directory):
    lines = ["cellgate-vectors 1"]
    count = 0
    for path in sorted(Path(directory).glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != 1:
            raise ValueError(f"{path}: unsupported format {document.get('format')!r}")
        lines.append(f"F {path.name}")
        for scenario in document["scenarios"]:
            name = scenario["name"]
            max_keys = u64(scenario.get("max_keys", 1024))
            policy = scenario.get("policy")
            if policy is not None:
                keyed = any("key" in s or "key_hex" in s for s in scenario["steps"])
                lines.append(f"P {name} {len(policy)} {max_keys} {int(keyed)}")
                for entry in policy:
                    lines.append(f"E {hexstr(entry['name'])} {entry['dimension']}")
                    lines.append(quota_line(entry["quota"]))
            else:
                refill = 1 if scenario.get("refill", "greedy") == "interval" else 0
                initial = scenario.get("initial_tokens")
                initial = "-" if initial is None else str(u64(initial))
                keyed = 1 if scenario.get("keyed", False) else 0
                lines.append(
                    f"S {name} {scenario['algorithm']} {refill} {initial} {keyed} {max_keys}"
                )
                lines.append(quota_line(scenario["quota"]))
            for step in scenario["steps"]:
                lines.append(step_line(step, policy is not None))
            lines.append("X")
            count += 1
    lines.append(f"N {count}")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: vectors_to_lines.py VECTOR_DIR OUTPUT")
    Path(sys.argv[2]).write_text(convert(sys.argv[1]), encoding="utf-8")


if __name__ == "__main__":
    main()
