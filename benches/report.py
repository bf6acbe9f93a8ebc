#!/usr/bin/env python3
"""Issue 15's speed targets against the last criterion run, as `make bench-node` reports its own.

Reads every `new/benchmark.json` and `new/estimates.json` under the criterion directory
(default `target/criterion`), takes each benchmark's median, and prints one line per target:
the figures, the ratio and whether it is met. Ratios are taken within one run, since this
machine is noisy. A target whose benchmarks are missing (not run) is said so, never guessed.
Exits 0 whatever the verdicts (a missed target is a result, reported in BENCHMARKS.md); 2 when
nothing was found at all.

    make bench-report             # cargo bench for the cell and keyed groups, then this
    python3 benches/report.py [criterion-dir]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def medians(root: Path) -> dict[str, float]:
    """Each benchmark's full id (`group/function[/value]`) to its median in ns."""
    found = {}
    for meta in root.glob("**/new/benchmark.json"):
        estimates = meta.with_name("estimates.json")
        if not estimates.exists():
            continue
        full_id = json.loads(meta.read_text())["full_id"]
        found[full_id] = json.loads(estimates.read_text())["median"]["point_estimate"]
    return found


# (what, cellgate's benchmark, the peer's benchmark or None for an absolute bound, the bound:
# a ratio to the peer, or ns)
TARGETS = [
    ("cell check, admitted", "cell/check_at/cellgate_gcra", "cell/check_at/governor_direct_step_clock", 1.3),
    ("cell check, denied", "cell/check_at_denied/cellgate_gcra", None, 5.0),
    ("cell check, default clock", "cell/check_clock/cellgate_gcra_monotonic", "cell/check_clock/governor_direct_quanta", 1.0),
    ("cell check, QuantaClock (feature quanta)", "cell/check_clock/cellgate_gcra_quanta", "cell/check_clock/governor_direct_quanta", 1.0),
    ("keyed, existing key, 1,000 keys", "keyed/existing/cellgate/1000", "keyed/existing/governor_dashmap_step_clock/1000", 1.0),
    ("keyed, existing key, 1,000,000 keys", "keyed/existing/cellgate/1000000", "keyed/existing/governor_dashmap_step_clock/1000000", 0.5),
]


def new_key_targets(found: dict[str, float]) -> list[tuple[str, str, str, float]]:
    """A new key no slower than governor's insert, for every table size both ran."""
    prefix = "keyed/new_key/cellgate/"
    targets = []
    for full_id in sorted(found, key=lambda name: (len(name), name)):
        if full_id.startswith(prefix):
            count = full_id[len(prefix):]
            peer = f"keyed/new_key/governor_dashmap_step_clock/{count}"
            targets.append((f"keyed, new key, {int(count):,} keys", full_id, peer, 1.0))
    return targets


def report(found: dict[str, float]) -> list[str]:
    lines = ["| target | cellgate | peer | ratio | bound | verdict |", "|---|---:|---:|---:|---:|---|"]
    for what, ours, peer, bound in TARGETS + new_key_targets(found):
        if ours not in found or (peer is not None and peer not in found):
            missing = ours if ours not in found else peer
            lines.append(f"| {what} | | | | | not run ({missing}) |")
            continue
        mine = found[ours]
        if peer is None:
            verdict = "met" if mine <= bound else "missed"
            lines.append(f"| {what} | {mine:.1f} ns | | | ≤ {bound:g} ns | {verdict} |")
            continue
        theirs = found[peer]
        ratio = mine / theirs
        verdict = "met" if ratio <= bound else "missed"
        lines.append(f"| {what} | {mine:.1f} ns | {theirs:.1f} ns | {ratio:.2f}× | ≤ {bound:g}× | {verdict} |")
    return lines


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    found = medians(root)
    if not found:
        print(f"no criterion results under {root}: run `make bench` (or `make bench-report`) first", file=sys.stderr)
        return 2
    print("\n".join(report(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
