"""Sends requests to the demo server and shows 200s turning into 429s, with the headers and
the JSON body (``make demo-py``). Usage: ``python client.py URL``."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

SHOWN = ("ratelimit-policy", "ratelimit", "retry-after")


def main(url: str) -> int:
    statuses = []
    for number in range(1, 8):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, error.headers, error.read()
        statuses.append(status)
        shown = "  ".join(f"{name}: {headers[name]}" for name in SHOWN if headers.get(name))
        print(f"request {number}: {status}  {body.decode()}")
        print(f"           {shown}")
    if statuses[:5] != [200] * 5 or statuses[5:] != [429, 429]:
        print(f"unexpected statuses: {statuses}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
