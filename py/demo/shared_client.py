"""Sends requests, each on a new connection, to the host-wide demo server (4 uvicorn workers
sharing one table) and shows 5 x 200 then 429s, with the pid of the worker that answered each
(``make demo-py``). Usage: ``python shared_client.py URL``."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

REQUESTS = 12


def main(url: str) -> int:
    statuses = []
    pids = set()
    for number in range(1, REQUESTS + 1):
        # The 429 comes from the rate-limit middleware, inside the one that adds the pid.
        request = urllib.request.Request(url, headers={"Connection": "close"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, headers = response.status, response.headers
        except urllib.error.HTTPError as error:
            status, headers = error.code, error.headers
        statuses.append(status)
        pid = headers.get("x-worker-pid", "?")
        pids.add(pid)
        print(f"request {number:2}: {status}  worker pid {pid}  RateLimit: {headers.get('ratelimit')}")
    print(f"{len(pids)} different workers answered; 5 admitted for the host, not 5 per worker")
    if statuses[:5] != [200] * 5 or set(statuses[5:]) != {429}:
        print(f"unexpected statuses: {statuses}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
