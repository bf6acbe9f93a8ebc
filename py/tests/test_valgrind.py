"""The extension runs under valgrind (callgrind is how the bindings' instruction counts are
measured): the host clock's first reading once crashed every process there (SIGSEGV in
rustix's own parsing of the auxiliary vector to find the vDSO; rustix now goes through libc).
Skipped where valgrind is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

CHECKS = """
import cellgate
limiter = cellgate.Limiter("2/hour")
assert limiter.check("k") and limiter.check("k") and not limiter.check("k")
assert limiter.now_ns() > 0
print("ok")
"""


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_limiter_checks_under_valgrind() -> None:
    result = subprocess.run(
        ["valgrind", "--tool=none", "--error-exitcode=99", sys.executable, "-c", CHECKS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
