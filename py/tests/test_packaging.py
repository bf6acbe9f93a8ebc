"""The package as installed: the tests run against the wheel, and the bench script works."""

from __future__ import annotations

import importlib.metadata
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


def test_wheel_is_tagged_for_the_oldest_python_it_can_run_on() -> None:
    """The extension calls `PyUnicode_AsUTF8AndSize` and defines `METH_FASTCALL` methods, both
    in the stable ABI only from CPython 3.10: the wheel says so (`cp310-abi3`, Requires-Python
    >=3.10) instead of promising 3.9."""
    distribution = importlib.metadata.distribution("cellgate")
    assert distribution.metadata["Requires-Python"] == ">=3.10"
    wheel = distribution.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    assert tags and all(tag.startswith("cp310-abi3-") for tag in tags), tags


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
    assert "cellgate Limiter.check (str key, store=SharedMemory)" in names
    assert "shared memory / in process:" in result.stdout
    assert "limits moving window (memory)" in names
    assert "pyrate-limiter in-memory bucket" in names
