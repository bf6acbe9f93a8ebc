"""The Flask extension under a real gunicorn on 127.0.0.1 (a free port; the server is
stopped in a ``finally`` even when the test fails): the 429 after the quota, with core's
headers and body, and a per-route count mode that refunds successful logins."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("flask")
pytest.importorskip("gunicorn")

APP = """
import flask
from cellgate import Limiter
from cellgate.flask import RateLimit

app = flask.Flask(__name__)
rate_limit = RateLimit(app, limiter=Limiter("3/minute"))

@app.get("/")
def index():
    return "hello"

@app.post("/login")
@rate_limit.limit(Limiter("2/minute"), count="failed")
def login():
    ok = flask.request.form.get("password") == "right"
    return ("welcome", 200) if ok else ("no", 401)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def gunicorn(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "flask_app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "flask_app:app", "--chdir", str(tmp_path), "-w", "1"]
    command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    log_path = tmp_path / "server.log"
    log = log_path.open("wb")
    env = {key: value for key, value in os.environ.items() if key != "FORWARDED_ALLOW_IPS"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"gunicorn stopped: {log_path.read_text()}"
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            assert time.monotonic() < deadline, f"gunicorn did not start: {log_path.read_text()}"
            time.sleep(0.05)
        yield port
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


def request(port: int, method: str, path: str, body: str = "") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_flask_extension_under_gunicorn(tmp_path: Path) -> None:
    with gunicorn(tmp_path) as port:
        for _ in range(3):
            status, headers, _ = request(port, "GET", "/")
            assert status == 200
            assert "ratelimit" in headers and "ratelimit-policy" in headers
        status, headers, body = request(port, "GET", "/")
        assert status == 429
        assert int(headers["retry-after"]) >= 1
        assert "ratelimit" in headers and "ratelimit-policy" in headers
        assert headers["content-type"].startswith("application/json")
        json.loads(body)

        # Successful logins are refunded; failed ones count (2 per minute).
        for _ in range(4):
            assert request(port, "POST", "/login", "password=right")[0] == 200
        assert request(port, "POST", "/login", "password=wrong")[0] == 401
        assert request(port, "POST", "/login", "password=wrong")[0] == 401
        status, headers, _ = request(port, "POST", "/login", "password=right")
        assert status == 429
        assert int(headers["retry-after"]) >= 1
