"""The middleware's keys under a real uvicorn server on 127.0.0.1 (a free port, stopped even
when a test fails): what ``scope["client"]`` holds depends on uvicorn's ``--proxy-headers``
(on by default) and ``--forwarded-allow-ips`` (``127.0.0.1,::1`` by default), as the README
says."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from typing import Any, Iterator, Optional

import pytest
import uvicorn

from cellgate import Limiter
from cellgate.asgi import RateLimitMiddleware, forwarded_for_key


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def routes(**apps: Any) -> Any:
    """An ASGI app sending ``/name`` to ``apps[name]``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await apps[scope["path"].strip("/")](scope, receive, send)

    return app


@contextlib.contextmanager
def serve(app: Any, **options: Any) -> Iterator[int]:
    """Runs ``app`` under uvicorn (its defaults, overridden by ``options``) on 127.0.0.1, on a
    port the kernel picked (the socket is bound here and handed over, so no other process can
    take it in between); yields the port and stops the server on the way out, even on failure."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
    assert not thread.is_alive(), "uvicorn did not stop"


def status(port: int, path: str, forwarded_for: Optional[str] = None) -> int:
    """The status of one GET on a new connection from 127.0.0.1."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture(autouse=True)
def no_forwarded_allow_ips_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn reads its default list from $FORWARDED_ALLOW_IPS: test the built-in default."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)


def one_per_minute(**options: Any) -> RateLimitMiddleware:
    return RateLimitMiddleware(hello, Limiter("1/minute"), **options)


def test_uvicorn_defaults_rewrite_the_client_address_of_a_local_peer() -> None:
    """A peer on 127.0.0.1 is trusted by default, so uvicorn takes the client address from
    X-Forwarded-For: behind a local proxy that appends to it, the default key is the real
    client's; and anyone who can connect from the host chooses their key."""
    app = routes(default=one_per_minute(), hops=one_per_minute(key=forwarded_for_key(trusted_hops=2)))
    with serve(app) as port:
        assert status(port, "/default") == 200, "no header: the connection's address, 127.0.0.1"
        assert status(port, "/default") == 429
        assert status(port, "/default", "192.0.2.1") == 200, "a new key: the address the header names"
        assert status(port, "/default", "192.0.2.1") == 429
        assert status(port, "/default", "spoofed, 192.0.2.1") == 429, "the right-most untrusted entry decides"
        assert status(port, "/default", "192.0.2.2") == 200, "a client that reaches the app directly picks its key"
        # trusted_hops=2 with no proxy in front: the second entry from the right is one the
        # client wrote, so it picks its key again.
        assert status(port, "/hops", "198.51.100.1, 10.0.0.1") == 200
        assert status(port, "/hops", "198.51.100.1, 10.0.0.2") == 429
        assert status(port, "/hops", "198.51.100.2, 10.0.0.1") == 200, "fewer proxies than trusted_hops"


def test_no_proxy_headers_keeps_the_connection_address() -> None:
    with serve(one_per_minute(), proxy_headers=False) as port:
        assert status(port, "/", "192.0.2.1") == 200
        assert status(port, "/", "192.0.2.2") == 429, "X-Forwarded-For ignored: one key, 127.0.0.1"


def test_a_peer_outside_forwarded_allow_ips_is_keyed_by_its_own_address() -> None:
    """What a proxy on another host looks like: its connections are not trusted, so every
    client behind it shares the proxy's address, and one bucket."""
    with serve(one_per_minute(), forwarded_allow_ips="192.0.2.254") as port:
        assert status(port, "/", "192.0.2.1") == 200
        assert status(port, "/", "192.0.2.2") == 429


def test_forwarded_allow_ips_star_takes_the_left_most_entry() -> None:
    """With '*' uvicorn trusts every peer and takes the first entry, which the client writes
    itself: every client chooses its key, even behind a proxy that appends."""
    with serve(one_per_minute(), forwarded_allow_ips="*") as port:
        assert status(port, "/", "198.51.100.1, 192.0.2.1") == 200
        assert status(port, "/", "198.51.100.2, 192.0.2.1") == 200, "the client's own entry decides"
        assert status(port, "/", "198.51.100.1, 192.0.2.7") == 429
