"""Host-wide limits: ``store=SharedMemory(path)`` puts a limiter's table in a file mapping that
every process opening the path shares (cellgate-host). Spawned processes, a real
``uvicorn --workers 4`` and a real ``gunicorn -w 4`` admit together exactly what one limiter
would, not once per worker; a file of another configuration, or no table at all, is a typed
error, never a reinterpretation or a crash."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import multiprocessing
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

import cellgate
from cellgate import (
    InvalidArgument,
    InvalidArgumentType,
    Limiter,
    ManualClock,
    Policy,
    SharedMemory,
    SharedMemoryBadFile,
    SharedMemoryConfigMismatch,
    SharedMemoryError,
    SharedMemoryPermissionError,
)

HERE = Path(__file__).resolve().parent


# --- one process ---------------------------------------------------------------------------


def test_two_limiters_over_one_path_share_every_key(tmp_path: Path) -> None:
    path = tmp_path / "limits"
    first = Limiter("3/hour", store=SharedMemory(path))
    assert path.is_file(), "the first open creates the file"
    second = Limiter("3/hour", store=SharedMemory(str(path)))
    assert first.check("k") and second.check("k") and first.check("k")
    assert not second.check("k"), "the fourth check of the hour is denied, whichever limiter makes it"
    assert second.check("other"), "keys stay apart"
    first.reset("k")
    assert second.check("k", 3), "a reset is seen by every limiter over the table"
    assert not first.peek("k")
    assert first.store is not None and first.store.path == str(path)
    assert Limiter("3/hour").store is None


def test_every_option_works_over_the_shared_table(tmp_path: Path) -> None:
    clock_free = Limiter(
        "4/hour",
        algorithm="token_bucket",
        refill="interval",
        max_keys=10,
        on_full="allow_untracked",
        store=SharedMemory(tmp_path / "interval"),
    )
    assert (clock_free.algorithm, clock_free.refill, clock_free.max_keys, clock_free.on_full) == (
        "token_bucket",
        "interval",
        10,
        "allow_untracked",
    )
    assert clock_free.check("k", 4) and not clock_free.check("k")
    assert clock_free.force("k").allowed is False and clock_free.refund("k", 5).allowed
    several = Limiter("2/second; 3/hour", store=SharedMemory(tmp_path / "several"))
    assert [several.check("k").allowed for _ in range(3)] == [True, True, False]
    assert several.quota_names == ["2-in-1s", "3-in-1h"]
    # A full table is a decision over a shared table too.
    tiny = Limiter("1/hour", max_keys=1, store=SharedMemory(tmp_path / "tiny"))
    reasons = {tiny.check(f"key-{index}").reason for index in range(200)}
    assert "table_full" in reasons, reasons
    assert tiny.stats()[0]["rejected_full"] > 0


def test_a_policy_reserves_and_settles_over_the_shared_table(tmp_path: Path) -> None:
    store = SharedMemory(tmp_path / "llm")
    dimensions = {"requests": "10/minute", "tokens": "1000/minute"}
    one = Policy(dimensions, store=store)
    other = Policy(dimensions, store=store)
    reservation = one.reserve("user", requests=1, tokens=600)
    assert reservation and reservation.pending
    assert not other.check("user", requests=1, tokens=500), "the reserved estimate is charged host-wide"
    after = one.settle(reservation, tokens=100)
    assert after.allowed and not reservation.pending
    assert other.check("user", requests=1, tokens=800), "the unused estimate came back for everyone"
    assert other.store is store
    with pytest.raises(InvalidArgument, match="another policy"):
        other.settle(one.reserve("user", requests=1, tokens=1))


def test_a_manual_clock_with_a_shared_store_is_refused(tmp_path: Path) -> None:
    store = SharedMemory(tmp_path / "t")
    with pytest.raises(InvalidArgument, match="CLOCK_MONOTONIC") as error:
        Limiter("1/second", clock=ManualClock(), store=store)
    assert error.value.argument == "clock"
    with pytest.raises(InvalidArgument) as error:
        Policy({"requests": "1/second"}, clock=ManualClock(), store=store)
    assert error.value.argument == "clock"
    assert not (tmp_path / "t").exists(), "refused before the file is touched"


def test_bad_store_arguments_name_themselves(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentType) as error:
        Limiter("1/second", store=str(tmp_path / "x"))  # type: ignore[arg-type]
    assert error.value.argument == "store"
    with pytest.raises(InvalidArgument) as error:
        SharedMemory(tmp_path / "x", access="world")  # type: ignore[arg-type]
    assert error.value.argument == "access"
    with pytest.raises(InvalidArgumentType) as error:
        SharedMemory(tmp_path / "x", allow_other_owner=1)  # type: ignore[arg-type]
    assert error.value.argument == "allow_other_owner"
    with pytest.raises(InvalidArgumentType) as error:
        SharedMemory(3)  # type: ignore[arg-type]
    assert error.value.argument == "path"
    with pytest.raises(InvalidArgument) as error:
        SharedMemory("")
    assert error.value.argument == "path"
    assert repr(SharedMemory(b"/dev/shm/x", access="group")) == (
        "SharedMemory('/dev/shm/x', access='group', allow_other_owner=False)"
    )


def test_remove_retires_the_table(tmp_path: Path) -> None:
    path = tmp_path / "limits"
    old = Limiter("1/hour", store=SharedMemory(path))
    assert old.check("k") and not old.check("k")
    assert Limiter("1/hour", store=SharedMemory(path)).peek("k").allowed is False, "it persists"
    assert SharedMemory.remove(path) is True
    assert SharedMemory.remove(str(path)) is False, "nothing left to remove"
    assert Limiter("1/hour", store=SharedMemory(path)).check("k"), "a fresh table"
    assert not old.check("k"), "a limiter that had the old table keeps it"


def test_new_files_are_owner_only_or_group(tmp_path: Path) -> None:
    owner, group = tmp_path / "owner", tmp_path / "group"
    Limiter("1/hour", store=SharedMemory(owner))
    Limiter("1/hour", store=SharedMemory(group, access="group"))
    assert stat.S_IMODE(owner.stat().st_mode) == 0o600
    assert stat.S_IMODE(group.stat().st_mode) == 0o660
    with pytest.raises(SharedMemoryPermissionError, match="0660") as error:
        Limiter("1/hour", store=SharedMemory(group))
    assert (error.value.file_mode, error.value.allowed_mode) == (0o660, 0o600)
    os.chmod(owner, 0o644)
    with pytest.raises(SharedMemoryPermissionError):
        Limiter("1/hour", store=SharedMemory(owner, access="group"))


# --- (d) mismatches and bad files -----------------------------------------------------------


def test_another_configuration_is_a_typed_error_naming_the_field(tmp_path: Path) -> None:
    store = SharedMemory(tmp_path / "limits")
    Limiter("10/minute", store=store)
    with pytest.raises(SharedMemoryConfigMismatch) as error:
        Limiter("20/minute", store=store)
    mismatch = error.value
    assert isinstance(mismatch, SharedMemoryError) and isinstance(mismatch, OSError)
    assert mismatch.quota == 0 and mismatch.field in ("rate_cost", "burst_cost", "period_ns"), mismatch
    assert f"quota 0's {mismatch.field} differs" in str(mismatch)
    assert mismatch.path == str(tmp_path / "limits") and mismatch.path in str(mismatch)
    with pytest.raises(SharedMemoryConfigMismatch, match="cannot be resized") as error:
        Limiter("10/minute", max_keys=500, store=store)
    assert (error.value.field, error.value.quota, error.value.our_value) == ("max_keys", None, 500)
    with pytest.raises(SharedMemoryConfigMismatch) as error:
        Limiter("10/minute; 100/day", store=store)
    assert error.value.field == "quota_count"
    with pytest.raises(SharedMemoryConfigMismatch) as error:
        Limiter("10/minute", algorithm="token_bucket", refill="interval", store=store)
    assert error.value.field == "refill"
    # The one that matches still opens.
    assert Limiter("10/minute", store=store).check("k")


def test_a_garbage_file_raises_and_does_not_crash(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(os.urandom(1 << 16))
    garbage.chmod(0o600)
    with pytest.raises(SharedMemoryBadFile) as error:
        Limiter("1/second", store=SharedMemory(garbage))
    assert error.value.problem == "not_a_table" and "not a cellgate shared table" in str(error.value)

    short = tmp_path / "short"
    short.write_bytes(b"cgshared")
    short.chmod(0o600)
    with pytest.raises(SharedMemoryBadFile) as error:
        Limiter("1/second", store=SharedMemory(short))
    assert (error.value.problem, error.value.file_bytes) == ("truncated", 8)

    table = tmp_path / "damaged"
    Limiter("1/second", store=SharedMemory(table))
    data = bytearray(table.read_bytes())
    data[13 * 8] ^= 0xFF  # a byte of the header's max_keys word
    table.write_bytes(bytes(data))
    with pytest.raises(SharedMemoryBadFile) as error:
        Limiter("1/second", store=SharedMemory(table))
    assert error.value.problem == "corrupt"

    cut = tmp_path / "cut"
    Limiter("1/second", store=SharedMemory(cut))
    os.truncate(cut, 4096)
    with pytest.raises(SharedMemoryBadFile) as error:
        Limiter("1/second", store=SharedMemory(cut))
    assert error.value.problem == "truncated"

    with pytest.raises(SharedMemoryBadFile) as error:
        Limiter("1/second", store=SharedMemory(tmp_path))
    assert error.value.problem == "not_regular_file"
    link = tmp_path / "link"
    link.symlink_to(cut)
    with pytest.raises(SharedMemoryBadFile) as error:
        Limiter("1/second", store=SharedMemory(link))
    assert error.value.problem == "not_regular_file", "symbolic links are never followed"

    with pytest.raises(SharedMemoryError) as error:
        Limiter("1/second", store=SharedMemory(tmp_path / "no-such-directory" / "limits"))
    assert error.value.errno is not None and error.value.filename == str(tmp_path / "no-such-directory" / "limits")


# --- (a) processes --------------------------------------------------------------------------


def test_four_spawned_processes_admit_the_quota_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """50/hour hammered by 4 processes at once: 50 admitted in all (one refill takes 72 s), not
    4 x 50. Each process opens the table itself, one of them creating it."""
    monkeypatch.syspath_prepend(str(HERE))  # spawned children import shared_workers from it
    import shared_workers

    path = str(tmp_path / "limits")
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(target=shared_workers.hammer, args=(path, "50/hour", 400, start, results)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    try:
        start.set()
        admitted = [results.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert sum(admitted) == 50, admitted
    assert not Limiter("50/hour", store=SharedMemory(path)).peek("the-one-key"), "exhausted host-wide"


# --- (b), (c) real servers with 4 workers ---------------------------------------------------

ASGI_APP = """
import os, pathlib
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from cellgate import Limiter, SharedMemory
from cellgate.asgi import RateLimitMiddleware

async def hello(request):
    return PlainTextResponse("hello")

limited = Starlette(
    routes=[Route("/", hello)],
    middleware=[Middleware(RateLimitMiddleware, limiter=Limiter("20/minute", store=SharedMemory(os.environ["CELLGATE_TEST_TABLE"])))],
)

async def app(scope, receive, send):
    # Every response says which worker answered it.
    async def send_with_pid(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"x-worker-pid", str(os.getpid()).encode())]}
        await send(message)
    await limited(scope, receive, send_with_pid)

pathlib.Path(os.environ["CELLGATE_TEST_READY"], str(os.getpid())).touch()
"""

WSGI_APP = """
import os, pathlib
from cellgate import Limiter, SharedMemory
from cellgate.wsgi import RateLimitMiddleware

def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

limited = RateLimitMiddleware(hello, Limiter("20/minute", store=SharedMemory(os.environ["CELLGATE_TEST_TABLE"])))

def app(environ, start_response):
    def start_with_pid(status, headers, exc_info=None):
        return start_response(status, [*headers, ("X-Worker-Pid", str(os.getpid()))], exc_info)
    return limited(environ, start_with_pid)

pathlib.Path(os.environ["CELLGATE_TEST_READY"], str(os.getpid())).touch()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def server(command: list[str], app_source: str, tmp_path: Path, port: int) -> Iterator[Path]:
    """Runs ``command`` (a server with 4 workers importing ``app_module:app`` from
    ``tmp_path``) in its own process group; yields once each of the 4 workers has imported the
    app (each opened the shared table) and the port answers. Stops the whole group on the way
    out, even when the test fails."""
    (tmp_path / "app_module.py").write_text(textwrap.dedent(app_source))
    ready = tmp_path / "ready"
    ready.mkdir()
    table = tmp_path / "table"
    env = {**os.environ, "CELLGATE_TEST_TABLE": str(table), "CELLGATE_TEST_READY": str(ready)}
    env.pop("FORWARDED_ALLOW_IPS", None)
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the server stopped: {(tmp_path / 'server.log').read_text()}"
            if len(list(ready.iterdir())) >= 4:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
            assert time.monotonic() < deadline, f"4 workers did not start: {(tmp_path / 'server.log').read_text()}"
            time.sleep(0.05)
        yield table
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


def one_request(port: int) -> tuple[int, str]:
    """The status of one GET on a new connection, and the pid of the worker that answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("x-worker-pid") or ""
    finally:
        connection.close()


def admitted_of(port: int, requests: int = 200) -> None:
    """200 requests from one client (8 at a time, each on its own connection): exactly the
    quota's 20 admitted for the whole host, plus at most what refilled meanwhile (one per 3 s
    of 20/minute; the requests take well under that)."""
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: one_request(port), range(requests)))
    elapsed_s = time.monotonic() - started
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 429}, statuses
    pids = {pid for _, pid in answers}
    assert len(pids) >= 2, f"one worker answered everything ({pids}): the test would show nothing"
    refilled = int(elapsed_s // 3)
    assert 20 <= statuses.count(200) <= 20 + refilled, (statuses.count(200), elapsed_s, len(pids))
    if elapsed_s < 3:
        assert statuses.count(200) == 20


def test_uvicorn_with_4_workers_admits_the_quota_once_for_the_host(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app_module:app", "--app-dir", str(tmp_path), "--workers", "4"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--lifespan", "off"]
    with server(command, ASGI_APP, tmp_path, port):
        admitted_of(port)


def test_gunicorn_with_4_workers_admits_the_quota_once_for_the_host(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "app_module:app", "--chdir", str(tmp_path), "-w", "4"]
    command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    with server(command, WSGI_APP, tmp_path, port):
        admitted_of(port)


def test_the_package_exports_the_store() -> None:
    for name in (
        "SharedMemory",
        "SharedMemoryError",
        "SharedMemoryConfigMismatch",
        "SharedMemoryBadFile",
        "SharedMemoryUnsupported",
        "SharedMemoryPermissionError",
    ):
        assert name in cellgate.__all__ and getattr(cellgate, name) is getattr(cellgate._cellgate, name)
    assert issubclass(cellgate.SharedMemoryUnsupported, SharedMemoryError)
