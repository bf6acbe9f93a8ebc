"""Shared fixtures. The tests run against the installed wheel, never the source tree, so the
repository's decision vectors are found through ``--vectors`` or ``CELLGATE_VECTORS``, its
header vectors through ``--headers`` or ``CELLGATE_HEADERS``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--vectors",
        default=os.environ.get("CELLGATE_VECTORS"),
        help="the directory of the decision vectors (testdata/vectors)",
    )
    parser.addoption(
        "--headers",
        default=os.environ.get("CELLGATE_HEADERS"),
        help="the directory of the header vectors (testdata/headers)",
    )
    parser.addoption(
        "--bench-script",
        default=os.environ.get("CELLGATE_BENCH_SCRIPT"),
        help="the bench script (py/bench/bench.py), run on a tiny count",
    )


@pytest.fixture(scope="session")
def vectors_dir(request: pytest.FixtureRequest) -> Path:
    value = request.config.getoption("--vectors")
    if not value:
        pytest.fail("set --vectors or CELLGATE_VECTORS to the repository's testdata/vectors")
    path = Path(value)
    assert path.is_dir(), path
    return path


@pytest.fixture(scope="session")
def headers_dir(request: pytest.FixtureRequest) -> Path:
    value = request.config.getoption("--headers")
    if not value:
        pytest.fail("set --headers or CELLGATE_HEADERS to the repository's testdata/headers")
    path = Path(value)
    assert path.is_dir(), path
    return path
