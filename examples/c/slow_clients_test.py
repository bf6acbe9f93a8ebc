#!/usr/bin/env python3
"""Slow and idle clients cannot starve the example server (examples/c/server.c).

    slow_clients_test.py SERVER_BINARY

Starts the server on a free port of 127.0.0.1 with a 1.5 s request-head deadline, then:

1. one client (127.0.0.1) opens 260 connections and sends half a request head on each, more
   than the server's 256 connection threads: another client (127.0.0.2) is still answered
   200 within a second;
2. those half-sent connections are answered 408 and closed by the deadline;
3. a client that trickles its head one byte at a time is closed by the same deadline (the
   deadline is for the whole head, not for each read);
4. once its idle connections are gone, the first client is served again;
5. SIGTERM stops the server promptly (exit status 0, so a sanitizer's report fails the test)
   even while half-sent connections are open.

The server is stopped however the test ends. Python standard library only; Linux (any
127.0.0.0/8 address is local there).
"""

import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HEAD_TIMEOUT_MS = 1500
CONNECTIONS_PER_CLIENT = 8
IDLE_CONNECTIONS = 260
# A normal client must be answered within this (the server answers at once; it only has to
# not be stuck behind the idle connections).
SERVED_WITHIN_S = 1.0
# Slow connections must be closed by the deadline plus this.
CLOSED_SLACK_S = 1.5
HALF_HEAD = b"GET / HTTP/1.1\r\nHost: example\r\n"


def connect(port, source, timeout_s=5.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_until_closed(sock, deadline):
    """Everything the server sends until it closes, or None if it is still open at deadline."""
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def request(port, source):
    """One complete GET from `source`: (status code, seconds taken)."""
    started = time.monotonic()
    sock = connect(port, source)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        answer = read_until_closed(sock, started + 5.0)
    finally:
        sock.close()
    taken_s = time.monotonic() - started
    if answer is None:
        raise AssertionError(f"{source}: no complete answer within 5 s")
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    if not match:
        raise AssertionError(f"{source}: not an HTTP answer: {answer[:80]!r}")
    return int(match.group(1)), taken_s


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def run(server, port):
    # 1. Idle half-sent connections from one client.
    idle = []
    first_opened = time.monotonic()
    for _ in range(IDLE_CONNECTIONS):
        sock = connect(port, "127.0.0.1")
        sock.sendall(HALF_HEAD)
        idle.append(sock)
    opened = time.monotonic()
    status, taken_s = request(port, "127.0.0.2")
    print(f"other client with {IDLE_CONNECTIONS} idle connections open: {status} in {taken_s:.3f} s")
    check(status == 200, f"another client got {status} while one client held idle connections")
    check(taken_s < SERVED_WITHIN_S, f"another client waited {taken_s:.3f} s")

    # 2. The deadline closes them: the ones being served get 408, the rest were refused.
    deadline = opened + HEAD_TIMEOUT_MS / 1000 + CLOSED_SLACK_S
    statuses = {}
    for sock in idle:
        answer = read_until_closed(sock, deadline)
        check(answer is not None, "a half-sent connection was still open after the deadline")
        code = answer[9:12].decode("ascii", "replace") if answer else "closed"
        statuses[code] = statuses.get(code, 0) + 1
        sock.close()
    print(f"idle connections closed within {time.monotonic() - opened:.3f} s: {statuses}")
    # At most CONNECTIONS_PER_CLIENT are served at once. Opening them all normally takes far
    # less than the head deadline, so exactly that many time out; on a loaded machine the
    # first ones can time out (freeing their slots for later ones) while the rest still open.
    opening_s = opened - first_opened
    timeout_s = HEAD_TIMEOUT_MS / 1000
    periods = 1 + math.ceil(opening_s / timeout_s)
    timed_out = statuses.get("408", 0)
    if opening_s < timeout_s / 2:
        check(timed_out == CONNECTIONS_PER_CLIENT,
              f"expected {CONNECTIONS_PER_CLIENT} connections timed out with 408, got {statuses}")
    else:
        check(CONNECTIONS_PER_CLIENT <= timed_out <= CONNECTIONS_PER_CLIENT * periods,
              f"expected {CONNECTIONS_PER_CLIENT} to {CONNECTIONS_PER_CLIENT * periods} 408s "
              f"(opening took {opening_s:.3f} s), got {statuses}")

    # 3. A head trickled one byte at a time is cut by the same deadline.
    sock = connect(port, "127.0.0.3")
    started = time.monotonic()
    answer = None
    try:
        for byte in HALF_HEAD * 4:
            sock.sendall(bytes([byte]))
            time.sleep(0.05)
            if time.monotonic() - started > HEAD_TIMEOUT_MS / 1000 + CLOSED_SLACK_S:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_until_closed(sock, started + HEAD_TIMEOUT_MS / 1000 + CLOSED_SLACK_S)
    sock.close()
    taken_s = time.monotonic() - started
    print(f"trickling client closed after {taken_s:.3f} s")
    check(answer is not None, "a trickling client was not closed by the head deadline")
    check(taken_s < HEAD_TIMEOUT_MS / 1000 + CLOSED_SLACK_S, f"trickling client held {taken_s:.3f} s")

    # 4. The first client's connection slots came back.
    status, _ = request(port, "127.0.0.1")
    check(status == 200, f"the first client got {status} after its idle connections closed")

    # 5. SIGTERM with half-sent connections open.
    held = [connect(port, "127.0.0.4") for _ in range(4)]
    for sock in held:
        sock.sendall(HALF_HEAD)
    time.sleep(0.2)
    stopped = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise AssertionError("the server did not stop within 5 s of SIGTERM") from None
    finally:
        for sock in held:
            sock.close()
    print(f"stopped in {time.monotonic() - stopped:.3f} s with status {code}")
    check(code == 0, f"the server exited with status {code}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        server = subprocess.Popen(
            [sys.argv[1], "-t", str(HEAD_TIMEOUT_MS), "-c", str(CONNECTIONS_PER_CLIENT),
             "127.0.0.1", "0", "1000/second"],
            stdout=out, stderr=err)
        failed = True
        try:
            port = None
            for _ in range(200):
                out.seek(0)
                match = re.search(rb"listening on http://127\.0\.0\.1:(\d+)/", out.read())
                if match:
                    port = int(match.group(1))
                    break
                if server.poll() is not None:
                    break
                time.sleep(0.05)
            check(port is not None, "the server did not start")
            run(server, port)
            failed = False
        except AssertionError as error:
            print(f"FAILED: {error}", file=sys.stderr)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            if failed:
                err.seek(0)
                sys.stderr.write("server stderr:\n" + err.read().decode(errors="replace"))
    if failed:
        sys.exit(1)
    print("ok: slow clients do not starve others")


if __name__ == "__main__":
    main()
