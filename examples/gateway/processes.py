"""Starting and stopping the example's servers (the fake model, the gateways) as processes,
for the demo and the tests: each server prints ``... listening on http://127.0.0.1:PORT`` as
its first line."""

from __future__ import annotations

import re
import subprocess
import threading


def start(argv: list[str], timeout_s: float = 20.0) -> tuple[subprocess.Popen[str], str]:
    """Starts a server that prints ``... listening on URL`` first; returns it and the URL.

    Raises RuntimeError (after stopping it) if the first line names no loopback URL; a server
    that prints nothing is killed after ``timeout_s``."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    timer = threading.Timer(timeout_s, process.kill)  # a server that never says where it is
    timer.start()
    try:
        line = process.stdout.readline() if process.stdout else ""
    finally:
        timer.cancel()
    match = re.search(r"listening on (http://127\.0\.0\.1:[0-9]+)$", line.strip())
    if match is None:
        stop(process)
        raise RuntimeError(f"{argv[1]} did not start: {line!r}")
    return process, match.group(1)


def stop(process: subprocess.Popen[str]) -> None:
    """Stops a server: SIGTERM, then SIGKILL after 5 s."""
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
