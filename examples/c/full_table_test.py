#!/usr/bin/env python3
"""A full table is a refusal like any other in the example server (examples/c/server.c).

    full_table_test.py SERVER_BINARY

Starts the server on a free port of 127.0.0.1 with room for one client (MAX_CLIENTS 1: a
16-slot table) under "1/hour", then sends one request from each of 64 client addresses
(127.0.1.1 to 127.0.1.64). The clients that find room are answered 200; every other one 429,
exactly as a client over its quota: Retry-After, RateLimit and RateLimit-Policy headers,
Content-Type application/json and core's body {"error":"rate_limited","retry_after":N} with
N the Retry-After value. None is answered 503 or 500. GET /stats counts the refused clients in
rejected_full. SIGTERM then stops the server (exit status 0, so a sanitizer's report fails the
test).

Python standard library only; Linux (any 127.0.0.0/8 address is local there).
"""

import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

CLIENTS = 64


def get(port, source, path="/"):
    """One GET from `source`: (status, headers as a dict of lowercased names, body)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: example\r\n\r\n".encode("ascii"))
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    match = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    if not match:
        raise AssertionError(f"{source}: not an HTTP answer: {answer[:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return int(match.group(1)), headers, body


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def run(server, port):
    answers = {}
    for client in range(1, CLIENTS + 1):
        source = f"127.0.1.{client}"
        status, headers, body = get(port, source)
        answers[status] = answers.get(status, 0) + 1
        check(status in (200, 429), f"{source} was answered {status}")
        check("ratelimit" in headers and "ratelimit-policy" in headers,
              f"{source}: no RateLimit headers in a {status}")
        if status == 429:
            retry_after = headers.get("retry-after")
            check(retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1,
                  f"{source}: a 429 without a Retry-After: {headers}")
            check(headers.get("content-type") == "application/json",
                  f"{source}: Content-Type {headers.get('content-type')!r}")
            expected = f'{{"error":"rate_limited","retry_after":{retry_after}}}'.encode()
            check(body == expected, f"{source}: body {body!r}, expected {expected!r}")
    print(f"{CLIENTS} clients into a table for 1: {answers}")
    check(answers.get(200, 0) >= 1, "no client found room")
    check(answers.get(429, 0) >= CLIENTS - 16, "the table held more clients than its 16 slots")
    status, _, body = get(port, "127.0.0.1", "/stats")
    stats = json.loads(body)
    print(f"stats: {stats}")
    check(status == 200 and stats["rejected_full"] == answers.get(429, 0),
          f"rejected_full {stats['rejected_full']} for {answers.get(429, 0)} refused clients")

    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise AssertionError("the server did not stop within 5 s of SIGTERM") from None
    check(code == 0, f"the server exited with status {code}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        server = subprocess.Popen([sys.argv[1], "127.0.0.1", "0", "1/hour", "1"],
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
    print("ok: a full table is answered 429 like any refusal")


if __name__ == "__main__":
    main()
