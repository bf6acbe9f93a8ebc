"""Limiter.check against its Python peers, measured in the same run (``make bench-py``).

Every contender limits 1000 keys to the same quota (1000 per second per key, so every call in
the measured loops is admitted and writes state) and is driven by the same loop over the same
keys: ``for key in keys: hit(key)``, one timed pass a round (after an untimed one), the
contenders in turn in each round.
Reported: nanoseconds per call of the best pass and of the median pass, their ratios to
``cellgate``, and allocation per call measured with ``tracemalloc``: the peak of memory allocated during one call above what
was allocated before it (the temporaries and the result), and the bytes still held per call
once the results are dropped (state that grows with traffic).

``cellgate`` is measured twice: with its table in the process, and with ``store=SharedMemory``
(the table in a file mapping under ``/dev/shm`` that every worker process of a host would
share); the ratio of the two is printed after the table (target: within 1.2x).

Peers: ``limits`` (moving window, memory storage: the target's peer; also its fixed window and
sliding window counter) and ``pyrate-limiter`` (one in-memory bucket per key, ``try_acquire``
non-blocking). Run: ``python py/bench/bench.py [--rounds N] [--alloc-calls N]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any, Callable

RATE = "1000/second"
KEYS = 1000
IN_PROCESS = "cellgate Limiter.check (str key)"
SHARED = "cellgate Limiter.check (str key, store=SharedMemory)"


def contenders(shared_path: str) -> dict[str, Callable[[], Callable[[str], Any]]]:
    """Name -> a factory of a fresh ``hit(key)`` callable (the shared-memory one attaches to
    the table at ``shared_path``, which the first call creates)."""
    import cellgate

    found: dict[str, Callable[[], Callable[[str], Any]]] = {
        IN_PROCESS: lambda: cellgate.Limiter(RATE).check,
        SHARED: lambda: cellgate.Limiter(RATE, store=cellgate.SharedMemory(shared_path)).check,
        "cellgate Limiter.check (max_keys=2000)": lambda: cellgate.Limiter(RATE, max_keys=2 * KEYS).check,
    }
    try:
        import limits
        from limits import storage, strategies

        item = limits.parse(RATE)

        def limits_factory(strategy: Any) -> Callable[[], Callable[[str], Any]]:
            def make() -> Callable[[str], Any]:
                limiter = strategy(storage.MemoryStorage())
                return lambda key: limiter.hit(item, key)

            return make

        found["limits moving window (memory)"] = limits_factory(strategies.MovingWindowRateLimiter)
        found["limits sliding window counter (memory)"] = limits_factory(strategies.SlidingWindowCounterRateLimiter)
        found["limits fixed window (memory)"] = limits_factory(strategies.FixedWindowRateLimiter)
    except ImportError:
        print("limits is not installed: skipped", file=sys.stderr)
    try:
        from pyrate_limiter import BucketFactory, Duration, InMemoryBucket, Limiter, Rate, RateItem

        rates = [Rate(1000, Duration.SECOND)]

        class PerKeyFactory(BucketFactory):  # type: ignore[misc]
            """One in-memory bucket per key (the default factory shares one bucket)."""

            def __init__(self) -> None:
                self.clock_bucket = InMemoryBucket(rates)
                self.buckets: dict[str, Any] = {}

            def wrap_item(self, name: str, weight: int = 1) -> Any:
                return RateItem(name, self.clock_bucket.now(), weight=weight)

            def get(self, item: Any) -> Any:
                bucket = self.buckets.get(item.name)
                if bucket is None:
                    bucket = self.buckets[item.name] = self.create(InMemoryBucket, rates)
                return bucket

        def pyrate() -> Callable[[str], Any]:
            limiter = Limiter(PerKeyFactory())
            return lambda key: limiter.try_acquire(key, blocking=False)

        found["pyrate-limiter in-memory bucket"] = pyrate
    except ImportError:
        print("pyrate-limiter is not installed: skipped", file=sys.stderr)
    return found


def measure(
    makers: dict[str, Callable[[], Callable[[str], Any]]], keys: list[str], rounds: int
) -> dict[str, tuple[float, float]]:
    """(best, median) nanoseconds per call of each contender over ``rounds`` passes of the
    keys. Each round times one pass of every contender in turn (after an untimed pass that
    brings the contender's own memory back into the cache), so that a change of load on the
    machine touches all of them alike; the best pass is the one least disturbed by other
    processes (this machine is shared), the median shows the spread."""
    hits = {name: make() for name, make in makers.items()}
    for name, hit in hits.items():
        # Every key present before timing; every call admitted (like for like).
        assert all(hit(key) for key in keys), f"{name}: the warm-up must be admitted"
    passes: dict[str, list[float]] = {name: [] for name in makers}
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, hit in hits.items():
                for key in keys:  # untimed: the contender's own memory back in cache
                    hit(key)
                started = time.perf_counter_ns()
                for key in keys:
                    hit(key)
                passes[name].append((time.perf_counter_ns() - started) / len(keys))
    finally:
        gc.enable()
    for name, hit in hits.items():
        assert all(hit(key) for key in keys), f"{name}: every measured call is admitted"
    return {name: (min(times), statistics.median(times)) for name, times in passes.items()}


def allocation(make: Callable[[], Callable[[str], Any]], keys: list[str], calls: int) -> tuple[float, float]:
    """(peak bytes allocated during one call, bytes still held per call after the results are
    dropped), averaged over ``calls`` calls after a warm-up that inserts every key."""
    hit = make()
    for key in keys:
        hit(key)
    sequence = (keys * (calls // len(keys) + 1))[:calls]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        peak_total = 0
        for key in sequence:
            tracemalloc.reset_peak()
            current = tracemalloc.get_traced_memory()[0]
            result = hit(key)
            peak_total += tracemalloc.get_traced_memory()[1] - current
            del result
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return peak_total / calls, held / calls


def machine() -> str:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    cores = os.cpu_count()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{model}, {cores} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; load average before the run: {load}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed passes over the keys per contender")
    parser.add_argument("--alloc-calls", type=int, default=5_000, help="calls for the allocation measure")
    args = parser.parse_args(argv)
    import cellgate

    keys = [f"user:{index}" for index in range(KEYS)]
    print(f"machine: {machine()}; cellgate {cellgate.__version__}")
    print(f"{len(keys)} keys, {RATE} per key, {args.rounds} interleaved passes over the keys\n")
    shared_dir = tempfile.mkdtemp(prefix="cellgate-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    shared_path = os.path.join(shared_dir, "limits")
    try:
        makers = contenders(shared_path)
        times = measure(makers, keys, args.rounds)
        rows = []
        for name, make in makers.items():
            peak, held = allocation(make, keys, args.alloc_calls)
            rows.append((name, *times[name], peak, held))
    finally:
        cellgate.SharedMemory.remove(shared_path)
        os.rmdir(shared_dir)
    base, base_median = rows[0][1], rows[0][2]
    print(
        "| contender | ns per call, best pass | ÷ cellgate | ns per call, median pass | ÷ cellgate "
        "| peak bytes allocated per call | bytes held per call after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, best, median, peak, held in rows:
        print(
            f"| {name} | {best:,.0f} | {best / base:.1f}× | {median:,.0f} | {median / base_median:.1f}× "
            f"| {peak:,.0f} | {held:,.1f} |"
        )
    (shared_best, shared_median), (local_best, local_median) = times[SHARED], times[IN_PROCESS]
    print(
        f"\nshared memory / in process: {shared_best / local_best:.2f}x best pass "
        f"({shared_best:,.0f} / {local_best:,.0f} ns), {shared_median / local_median:.2f}x median pass "
        f"({shared_median:,.0f} / {local_median:,.0f} ns)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
