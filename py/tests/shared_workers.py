"""What the spawned processes of ``test_shared_memory.py`` run (multiprocessing's spawn start
method imports this module by name in each child, from the parent's ``sys.path``)."""

from __future__ import annotations

from typing import Any


def hammer(path: str, rate: str, calls: int, start: Any, results: Any) -> None:
    """Opens the limiter over the shared table at ``path``, waits for ``start`` (so that every
    process hammers at once), checks one key ``calls`` times and puts the number admitted."""
    from cellgate import Limiter, SharedMemory

    limiter = Limiter(rate, store=SharedMemory(path))
    start.wait(30)
    admitted = sum(1 for _ in range(calls) if limiter.check("the-one-key"))
    results.put(admitted)
