#!/usr/bin/env python3
"""Middleware overhead per request, over loopback, with a real load generator (wrk).

For each framework (express, fastify, starlette, flask, django) and each variant (none: no limiter;
cellgate: cellgate's middleware; peer: the limiter a user would pick instead), this starts
the app's server on 127.0.0.1 and a free port, checks its responses (status 200; for a
limiter, its rate-limit headers; for none, no such header), runs wrk for a fixed duration
with fixed connections, parses req/s and the p50/p99 latencies, and stops the server (also
when something failed). The variants of a framework run interleaved, ``--runs`` times
(none cellgate peer none cellgate peer), so that a drift of the machine hits them alike. It
ends with a markdown table: req/s of every run, and each limiter's overhead over no limiter,
in % of throughput and in microseconds per request (1/req/s difference).

Standard library only. ``--smoke`` checks a few requests per app and runs wrk for 1 s once,
without warm-up, to keep the harness working (``make test-middleware-bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
FRAMEWORKS = ("express", "fastify", "starlette", "flask", "django")
# Extra variants of one framework: cellgate sending exactly the peer's header set, so that
# the two limiters are also compared byte for byte (@fastify/rate-limit sends the
# X-RateLimit-* triple, about 30 bytes shorter than the IETF pair cellgate sends by default).
EXTRA_VARIANTS = {"fastify": ("cellgate-legacy",)}
VARIANT_NAMES = {"none": "no limiter", "cellgate": "cellgate", "cellgate-legacy": "cellgate, the peer's X-RateLimit-* headers"}


def variants_of(framework: str) -> tuple[str, ...]:
    """The variants measured for `framework`, in the order they run in each round."""
    return ("none", "cellgate", *EXTRA_VARIANTS.get(framework, ()), "peer")


PEERS = {
    "express": "express-rate-limit",
    "fastify": "@fastify/rate-limit",
    "starlette": "slowapi",
    "flask": "Flask-Limiter",
    "django": "django-ratelimit",
}
# The headers each limiter must send on an admitted response (lower case).
DRAFT_10 = ("ratelimit", "ratelimit-policy")
X_RATELIMIT = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
EXPECTED_HEADERS = {
    ("express", "cellgate"): DRAFT_10,
    ("express", "peer"): ("ratelimit", "ratelimit-policy"),  # express-rate-limit draft-8
    ("fastify", "cellgate"): DRAFT_10,
    ("fastify", "cellgate-legacy"): X_RATELIMIT,
    ("fastify", "peer"): X_RATELIMIT,
    ("starlette", "cellgate"): DRAFT_10,
    ("starlette", "peer"): X_RATELIMIT,
    ("flask", "cellgate"): DRAFT_10,
    ("flask", "peer"): X_RATELIMIT,
    ("django", "cellgate"): DRAFT_10,
    ("django", "peer"): (),  # django-ratelimit sends no rate-limit headers
}
RATE_LIMIT_HEADER = re.compile(r"^(x-)?ratelimit", re.IGNORECASE)
SERVER_START_TIMEOUT_S = 30.0


class BenchError(Exception):
    """A check failed: the harness stops and says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(args: argparse.Namespace, framework: str, variant: str, port: int) -> list[str]:
    if framework in ("express", "fastify"):
        return [args.node, str(APPS / f"{framework}.js"), variant, str(port)]
    if framework == "starlette":
        # uvicorn as `pip install "uvicorn[standard]"` runs it: uvloop and httptools.
        return [
            args.python, "-m", "uvicorn", "--app-dir", str(APPS), "starlette_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    if framework in ("flask", "django"):
        # One gunicorn worker (each server here is one process), threaded so that it keeps
        # wrk's connections alive (the sync worker closes every connection after a response).
        return [
            args.python, "-m", "gunicorn", "--chdir", str(APPS), "--workers", "1",
            "--worker-class", "gthread", "--threads", "4", "--bind", f"127.0.0.1:{port}",
            "--log-level", "warning", f"{framework}_app:app",
        ]  # fmt: skip
    raise ValueError(f"framework: {framework!r}")


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def wait_until_serving(process: subprocess.Popen, url: str, label: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{label}: the server exited with status {process.returncode} before serving")
        try:
            get(url)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.05)
    raise BenchError(f"{label}: the server did not answer within {SERVER_START_TIMEOUT_S:.0f} s")


def check_responses(framework: str, variant: str, url: str, count: int) -> dict[str, str]:
    """Checks `count` requests: status 200, and the limiter's headers (none: no rate-limit
    header at all, so that a variant that silently lost its limiter fails). Returns the
    rate-limit headers of the last response, for the report."""
    label = f"{framework}/{variant}"
    expected = EXPECTED_HEADERS.get((framework, variant), ())
    limit_headers: dict[str, str] = {}
    for _ in range(count):
        status, headers, body = get(url)
        if status != 200:
            raise BenchError(f"{label}: GET / answered {status}, expected 200 (body {body[:200]!r})")
        missing = [name for name in expected if name not in headers]
        if missing:
            raise BenchError(f"{label}: the response lacks the rate-limit headers {missing}; it has {sorted(headers)}")
        limit_headers = {name: value for name, value in headers.items() if RATE_LIMIT_HEADER.match(name)}
        if variant == "none" and limit_headers:
            raise BenchError(f"{label}: no limiter, yet the response has rate-limit headers {limit_headers}")
    return limit_headers


@dataclass
class WrkResult:
    requests_per_s: float
    p50_us: float
    p99_us: float
    requests: int


DURATION_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def parse_duration_us(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise BenchError(f"wrk: cannot read the duration {text!r}")
    return float(match.group(1)) * DURATION_US[match.group(2)]


def parse_wrk(output: str, label: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in ", output, re.MULTILINE)
    if rps is None or p50 is None or p99 is None or total is None:
        raise BenchError(f"{label}: cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx is not None:
        raise BenchError(f"{label}: {non_2xx.group(1)} responses were not 2xx/3xx under load:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors is not None and any(int(n) for n in errors.groups()):
        raise BenchError(f"{label}: socket errors under load:\n{output}")
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_us=parse_duration_us(p50.group(1)),
        p99_us=parse_duration_us(p99.group(1)),
        requests=int(total.group(1)),
    )


def run_wrk(args: argparse.Namespace, url: str, duration_s: float, label: str) -> WrkResult:
    command = [
        args.wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{duration_s:g}s", "--latency", url,
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 30)
    if completed.returncode != 0:
        raise BenchError(f"{label}: wrk exited with {completed.returncode}:\n{completed.stdout}{completed.stderr}")
    return parse_wrk(completed.stdout, label)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (gunicorn has a worker), SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@dataclass
class Measured:
    framework: str
    variant: str
    runs: list[WrkResult] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def mean_rps(self) -> float:
        return statistics.fmean(run.requests_per_s for run in self.runs)


def measure(args: argparse.Namespace, framework: str, variant: str, into: Measured) -> None:
    label = f"{framework}/{variant}"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, BENCH_VARIANT=variant, CELLGATE_NODE_DIR=str(args.cellgate_node_dir))
    log_path = args.log_dir / f"{framework}-{variant}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            server_command(args, framework, variant, port),
            env=env,
            cwd=APPS,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_serving(process, url, label)
            into.headers = check_responses(framework, variant, url, args.check_requests)
            if args.warmup > 0:
                run_wrk(args, url, args.warmup, label + " (warm-up)")
            result = run_wrk(args, url, args.duration, label)
            # The server must still answer as it did (a limiter that started denying, a crash).
            check_responses(framework, variant, url, 1)
            if process.poll() is not None:
                raise BenchError(f"{label}: the server exited during the run ({process.returncode})")
        except BaseException:
            sys.stderr.write(f"{label}: failed; the server's log ({log_path}):\n")
            stop(process)
            log.flush()
            sys.stderr.write(log_path.read_text(errors="replace")[-4000:] + "\n")
            raise
        finally:
            stop(process)
    into.runs.append(result)
    print(
        f"  {label:20} run {len(into.runs)}: {result.requests_per_s:10.1f} req/s  "
        f"p50 {result.p50_us:8.1f} us  p99 {result.p99_us:8.1f} us",
        flush=True,
    )


def machine_facts() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [f"nproc {os.cpu_count()}", f"CPU {model}", f"{platform.system()} {platform.release()}"]


def tool_versions(args: argparse.Namespace) -> str:
    def first_line(command: list[str]) -> str:
        completed = subprocess.run(command, capture_output=True, text=True)
        return (completed.stdout or completed.stderr).strip().splitlines()[0]

    node = first_line([args.node, "--version"])
    python = first_line([args.python, "--version"])
    wrk = first_line([args.wrk, "--version"]).split(" [")[0]
    return f"node {node}, {python}, {wrk}"


def format_table(results: dict[tuple[str, str], Measured], frameworks: list[str], runs: int) -> str:
    run_columns = " | ".join(f"run {i + 1} req/s" for i in range(runs))
    lines = [
        f"| framework | variant | {run_columns} | mean req/s | p50 µs | p99 µs | overhead % | overhead µs/req |",
        "|---|---|" + "---:|" * runs + "---:|---:|---:|---:|---:|",
    ]
    for framework in frameworks:
        base = results[(framework, "none")]
        for variant in variants_of(framework):
            measured = results[(framework, variant)]
            name = VARIANT_NAMES.get(variant, PEERS[framework])
            per_run = " | ".join(f"{run.requests_per_s:,.0f}" for run in measured.runs)
            p50 = "/".join(f"{run.p50_us:.0f}" for run in measured.runs)
            p99 = "/".join(f"{run.p99_us:.0f}" for run in measured.runs)
            if variant == "none":
                overhead_pct = overhead_us = "—"
            else:
                pct = (1 - measured.mean_rps() / base.mean_rps()) * 100
                us = 1e6 / measured.mean_rps() - 1e6 / base.mean_rps()
                # Each run against the no-limiter run just before it, to show the noise.
                pairs = ", ".join(
                    f"{1e6 / run.requests_per_s - 1e6 / none.requests_per_s:.1f}"
                    for run, none in zip(measured.runs, base.runs)
                )
                overhead_pct = f"{pct:.1f}"
                overhead_us = f"{us:.1f} ({pairs})"
            lines.append(
                f"| {framework} | {name} | {per_run} | {measured.mean_rps():,.0f} | {p50} | {p99} | "
                f"{overhead_pct} | {overhead_us} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter with the Python apps' dependencies")
    parser.add_argument("--node", default="node")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument(
        "--cellgate-node-dir",
        type=Path,
        default=HERE.parent.parent / "node",
        help="the cellgate Node package (with native/cellgate.node built)",
    )
    parser.add_argument(
        "--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset of " + ", ".join(FRAMEWORKS)
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each run")
    parser.add_argument("--runs", type=int, default=2, help="interleaved runs of every variant")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--check-requests", type=int, default=1, help="requests checked before the load")
    parser.add_argument("--log-dir", type=Path, default=None, help="where the servers' logs go (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--smoke", action="store_true", help="1 s per app, one run, no warm-up, 3 requests checked")
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.warmup, args.runs, args.check_requests = 1.0, 0.0, 1, 3
    frameworks = [name for name in args.frameworks.split(",") if name]
    unknown = [name for name in frameworks if name not in FRAMEWORKS]
    if unknown:
        parser.error(f"--frameworks: unknown {unknown}")
    # Absolute (the servers run in apps/), without resolving a venv's interpreter symlink.
    for option in ("python", "node", "wrk"):
        found = shutil.which(getattr(args, option))
        if found is None:
            parser.error(f"--{option}: {getattr(args, option)!r} not found")
        setattr(args, option, os.path.abspath(found))
    args.cellgate_node_dir = args.cellgate_node_dir.resolve()
    if not (args.cellgate_node_dir / "native" / "cellgate.node").exists():
        parser.error(f"--cellgate-node-dir: {args.cellgate_node_dir}/native/cellgate.node is missing (make build-node)")
    if args.log_dir is None:
        import tempfile

        args.log_dir = Path(tempfile.mkdtemp(prefix="cellgate-middleware-bench."))
    args.log_dir.mkdir(parents=True, exist_ok=True)

    facts = machine_facts()
    print(f"machine: {', '.join(facts)}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, warm-up {args.warmup:g} s, "
        f"{args.runs} interleaved runs; server logs in {args.log_dir}",
        flush=True,
    )
    started = time.monotonic()
    results: dict[tuple[str, str], Measured] = {}
    try:
        for framework in frameworks:
            for _ in range(args.runs):
                for variant in variants_of(framework):
                    measured = results.setdefault((framework, variant), Measured(framework, variant))
                    measure(args, framework, variant, measured)
    except BenchError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1

    print()
    print(f"Machine: {', '.join(facts)}; {tool_versions(args)}; load average after: {os.getloadavg()[0]:.2f}.")
    print(
        f"Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency` over loopback, after "
        f"{args.warmup:g} s of warm-up, {args.runs} runs interleaved (none, cellgate, peer, none, ...); "
        f"{time.monotonic() - started:.0f} s in all."
    )
    print("Overhead: from the mean req/s; in brackets, each run against the no-limiter run of its round.")
    print()
    print(format_table(results, frameworks, args.runs))
    print()
    print("Rate-limit headers each limiter sent (last checked response):")
    for framework in frameworks:
        for variant in variants_of(framework)[1:]:
            headers = results[(framework, variant)].headers
            shown = "; ".join(f"{name}: {value}" for name, value in sorted(headers.items()))
            print(f"- {framework}/{variant}: {shown}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "machine": facts,
                    "duration_s": args.duration,
                    "connections": args.connections,
                    "results": [
                        {"framework": m.framework, "variant": m.variant, "runs": [vars(run) for run in m.runs]}
                        for m in results.values()
                    ],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
