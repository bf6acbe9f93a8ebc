"""The package as installed: the tests run against the wheel, and the bench script works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cellgate
from cellgate import _cellgate


def test_runs_against_the_installed_wheel() -> None:
    assert "site-packages" in Path(cellgate.__file__).parts, cellgate.__file__
    assert Path(_cellgate.__file__).name.endswith(".abi3.so") or os.name == "nt"
    assert (Path(cellgate.__file__).parent / "py.typed").exists()
    assert (Path(cellgate.__file__).parent / "_cellgate.pyi").exists()


def test_public_names() -> None:
    for name in cellgate.__all__:
        assert hasattr(cellgate, name), name
    assert cellgate.NEVER_NS == 2**64 - 1
    assert cellgate.DEFAULT_MAX_KEYS == 100_000
    assert cellgate.Decision.__module__ == "cellgate"


def test_bench_script_runs(request: pytest.FixtureRequest) -> None:
    script = request.config.getoption("--bench-script")
    if not script:
        pytest.fail("set --bench-script or CELLGATE_BENCH_SCRIPT to py/bench/bench.py")
    result = subprocess.run(
        [sys.executable, script, "--rounds", "2", "--alloc-calls", "200"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    names = [line.split("|")[1].strip() for line in table[1:]]
    assert names[0].startswith("cellgate")
    assert "limits moving window (memory)" in names
    assert "pyrate-limiter in-memory bucket" in names
