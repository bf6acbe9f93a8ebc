#!/usr/bin/env python3
"""Runs the keyed-check benchmarks of `make bench-c` and summarizes them.

    compare.py time KEYS ITERATIONS ROUNDS RUNS -- COMMAND ...
    compare.py instructions KEYS ITERATIONS -- COMMAND ...

Each COMMAND is a program and its first arguments, split on spaces; KEYS ITERATIONS ROUNDS
are appended. It prints lines `NAME KEYS NS_PER_CHECK`, one per timed round, for one variant
(the first command is the baseline, the Rust call).

`time`: the commands run one after another, RUNS times over, so that load on a shared machine
hits every variant alike; per variant, the median and the minimum over all rounds, the paired
difference to the baseline (per run, the variant's median round minus the baseline's, then
the median over runs: the nanoseconds the C ABI adds), the difference of the minima, and the
ratio of the medians.

`instructions`: each command runs under valgrind's cachegrind at ITERATIONS and at twice as
many checks; the difference, divided by the extra checks, is the instructions executed per
check, setup excluded. Deterministic for one table, so it shows small differences that the
timings of a noisy machine hide (it does not weigh cache misses or the cost of each
instruction); but every table has a random hash seed, which moves keys to other probe
distances and the count by a few instructions, so each variant is counted in REPEATS
processes (the median, and the range).
"""

import statistics
import subprocess
import sys


def time_mode(keys, iterations, rounds, runs, commands):
    figures = {}  # name -> one list of round figures per run
    for _ in range(int(runs)):
        for command in commands:
            out = subprocess.run(
                command.split() + [keys, iterations, rounds],
                check=True, capture_output=True, text=True,
            ).stdout
            per_run = {}
            for line in out.splitlines():
                name, _, ns = line.split()
                per_run.setdefault(name, []).append(float(ns))
            for name, values in per_run.items():
                figures.setdefault(name, []).append(values)
    names = list(figures)
    base = names[0]
    print(f"time: keyed check among {keys} keys, ns per check (thread CPU time); "
          f"{runs} runs x {rounds} rounds x {iterations} checks per variant")
    print(f"  {'variant':<16} {'median':>7} {'min':>7} {'Δpaired':>8} {'Δmin':>7} {'ratio':>6}")
    base_all = [v for run in figures[base] for v in run]
    for name in names:
        values = [v for run in figures[name] for v in run]
        # Paired: per run, this variant's median round minus the baseline's (they ran one
        # after the other), then the median over runs; slow changes of load cancel out.
        paired = statistics.median(
            statistics.median(mine) - statistics.median(theirs)
            for mine, theirs in zip(figures[name], figures[base])
        )
        ratio = statistics.median(values) / statistics.median(base_all)
        print(f"  {name:<16} {statistics.median(values):>7.1f} {min(values):>7.1f} "
              f"{paired:>+8.1f} {min(values) - min(base_all):>+7.1f} {ratio:>6.2f}")


def instructions(command, keys, iterations):
    """Instructions per check of one variant: cachegrind at two iteration counts."""
    counts = []
    for n in (iterations, 2 * iterations):
        result = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no",
             "--cachegrind-out-file=/dev/null"] + command.split() + [keys, str(n), "1"],
            check=True, capture_output=True, text=True,
        )
        name = result.stdout.split()[0]
        refs = [line for line in result.stderr.splitlines() if "I   refs" in line
                or "I refs" in line]
        counts.append(int(refs[0].split(":")[1].replace(",", "").split()[0]))
    # One warm-up round and one timed round: 2 x n checks.
    return name, (counts[1] - counts[0]) / (2 * iterations)


REPEATS = 3


def instructions_mode(keys, iterations, commands):
    print(f"instructions per check (cachegrind), keyed check among {keys} keys; "
          f"median (and range) of {REPEATS} processes, each with its own hash seed")
    results = []
    for command in commands:
        counts = [instructions(command, keys, int(iterations)) for _ in range(REPEATS)]
        results.append((counts[0][0], [count for _, count in counts]))
    base = statistics.median(results[0][1])
    print(f"  {'variant':<16} {'instr':>7} {'Δ':>7}  range")
    for name, counts in results:
        median = statistics.median(counts)
        print(f"  {name:<16} {median:>7.1f} {median - base:>+7.1f}  "
              f"{min(counts):.1f} to {max(counts):.1f}")


def main():
    if "--" not in sys.argv or len(sys.argv) < 3:
        sys.exit(__doc__)
    split = sys.argv.index("--")
    mode, params, commands = sys.argv[1], sys.argv[2:split], sys.argv[split + 1:]
    if mode == "time" and len(params) == 4:
        time_mode(*params, commands)
    elif mode == "instructions" and len(params) == 2:
        instructions_mode(*params, commands)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
