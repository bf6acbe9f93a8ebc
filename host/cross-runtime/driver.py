"""Cross-runtime test of the host-wide tier (issue 13): C, Python and Node processes open one
shared table at the same time and check one key; together they admit exactly the quota once
(50 of 50/hour), not once per process or per runtime.

Usage: ``python3 driver.py --python PY --node NODE --node-path DIR --c-worker BIN``
(``make test-cross-runtime`` builds and passes all four). Exits non-zero on any failure; every
worker is killed however the run ends, and the table file is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_WORKER = HERE.parent.parent / "node" / "test" / "shared-child.js"
QUOTA = 50  # 50/hour: one unit back every 72 s, so a run of seconds admits exactly the burst
ATTEMPTS = 60  # per worker: 6 workers try 360 times
PAUSE_MS = "1"  # between checks, so that the runtimes' checks interleave


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--node-path", required=True, help="a node_modules holding the cellgate package")
    parser.add_argument("--c-worker", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for round_ in range(args.rounds):
        path = Path(tempfile.gettempdir()) / f"cellgate-cross-{os.getpid()}-{round_}"
        commands = {
            "c": [args.c_worker, str(path), str(ATTEMPTS), PAUSE_MS],
            "python": [args.python, str(HERE / "worker.py"), str(path), str(ATTEMPTS), PAUSE_MS],
            "node": [args.node, str(NODE_WORKER), "check", str(path), str(ATTEMPTS), PAUSE_MS],
        }
        env = dict(os.environ, NODE_PATH=args.node_path)
        workers: list[tuple[str, subprocess.Popen[str]]] = []
        try:
            # Two of each runtime, started in turn: whichever comes first creates the file.
            for runtime in ("c", "python", "node") * 2:
                workers.append(
                    (runtime, subprocess.Popen(commands[runtime], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
                )
            time.sleep(1.0)  # every worker has opened the table
            started = time.monotonic()
            for _, worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            admitted: dict[str, int] = {}
            for runtime, worker in workers:
                out, _ = worker.communicate(timeout=60)
                if worker.returncode != 0:
                    print(f"round {round_}: a {runtime} worker exited {worker.returncode}", file=sys.stderr)
                    return 1
                admitted[runtime] = admitted.get(runtime, 0) + json.loads(out)["admitted"]
            elapsed_s = time.monotonic() - started
            total = sum(admitted.values())
            print(f"round {round_}: admitted {admitted} = {total} of {QUOTA}/hour in {elapsed_s:.2f} s")
            if elapsed_s < 72 and total != QUOTA:
                print(f"round {round_}: expected exactly {QUOTA}", file=sys.stderr)
                return 1
        finally:
            for _, worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
            path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
