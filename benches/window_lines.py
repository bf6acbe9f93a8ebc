"""Model of where a present key sits in cellgate's keyed table, in cache lines.

Replays the insert policy of `core/src/keyed.rs` (a key takes the first free slot of its
first window of PROBE_WINDOW slots; if that window is full, of its second; else it is
refused) with uniform random homes, for `max_keys` keys in `max_keys * 4/3` slots, and counts
the cache lines a lookup of each present key reads: from its window's first slot to the slot it
lives in (a key in its second window also reads the whole first window).

`--layout groups` (the default, table layout 4) packs the fingerprints of 8 slots in one line
and their states in the two after it: a lookup reads the fingerprint lines of the groups it
scans, then one state line. `--layout slots` (layout 3) had 32-byte slots, fingerprint and state
together, two per line. `--align N` starts every window at a multiple of N slots, to show what
aligning the homes would save.

    python3 benches/window_lines.py [--keys 1000000] [--layout groups|slots] [--align N]
"""

import argparse
import collections
import random

PROBE_WINDOW = 16
GROUP_SLOTS = 8
SLOT_BYTES = 32
LINE_BYTES = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--layout", choices=["groups", "slots"], default="groups")
    parser.add_argument("--align", type=int, default=1, help="window start alignment, in slots")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    slot_count = args.keys + args.keys // 3
    taken = [False] * slot_count

    def place(home: int) -> int | None:
        for distance in range(PROBE_WINDOW):
            index = (home + distance) % slot_count
            if not taken[index]:
                taken[index] = True
                return distance
        return None

    def scanned(home: int, distance: int) -> int:
        """The lines read scanning from `home` to `home + distance` (fingerprints only, for groups)."""
        if args.layout == "groups":
            return (home + distance) // GROUP_SLOTS - home // GROUP_SLOTS + 1
        return (home + distance) * SLOT_BYTES // LINE_BYTES - home * SLOT_BYTES // LINE_BYTES + 1

    # A group's lookup ends with the one state line of the slot it found.
    state_lines = 1 if args.layout == "groups" else 0

    def lines(home: int, distance: int) -> int:
        return scanned(home, distance) + state_lines

    counts: collections.Counter[int] = collections.Counter()
    refused = second = present = 0
    while present < args.keys:
        first_home = rng.randrange(slot_count) // args.align * args.align
        second_home = rng.randrange(slot_count) // args.align * args.align
        distance = place(first_home)
        if distance is not None:
            counts[lines(first_home, distance)] += 1
        else:
            distance = place(second_home)
            if distance is None:
                refused += 1
                continue
            second += 1
            counts[scanned(first_home, PROBE_WINDOW - 1) + lines(second_home, distance)] += 1
        present += 1
    mean = sum(k * v for k, v in counts.items()) / present
    print(
        f"keys {present:,} in {slot_count:,} slots, layout {args.layout}, "
        f"windows aligned to {args.align} slot(s)"
    )
    print(f"refused on the way {refused:,}; in their second window {second:,}")
    print(f"mean lines per lookup {mean:.3f}")
    for k in sorted(counts)[:5]:
        print(f"  {k} line(s): {counts[k] / present:.1%}")


if __name__ == "__main__":
    main()
