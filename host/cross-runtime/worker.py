"""A Python process of the cross-runtime test (driver.py): ``python worker.py PATH ATTEMPTS PAUSE_MS``
opens the shared table at PATH for a 50/hour limiter (the configuration the C and Node workers
use), waits for a line on stdin, checks ATTEMPTS times, PAUSE_MS apart, on the key "hot-key" and prints
``{"admitted": N}``."""

import json
import sys
import time

from cellgate import Limiter, SharedMemory


def main() -> None:
    path, attempts, pause_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000
    limiter = Limiter("50/hour", store=SharedMemory(path))
    sys.stdin.readline()
    admitted = 0
    for _ in range(attempts):
        admitted += limiter.check("hot-key").allowed
        time.sleep(pause_s)
    print(json.dumps({"admitted": admitted}), flush=True)


if __name__ == "__main__":
    main()
