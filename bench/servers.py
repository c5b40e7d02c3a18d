"""Which HTTP server should `todoscale serve` default to? `python -m bench.servers`.

Every candidate serves the same seeded SQLite instance on its own port, all at once, and
the runs are interleaved (server by server, run by run) so drift hits them alike. Each
server's reference read is reported against gunicorn sync's floor of the same run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import ROOT, embedded
from todoscale.bench import load as wrk
from todoscale.bench import procs
from todoscale.bench import summary as report

# name: (server, extra environment). gunicorn sync x5 is 2 * cores + 1 on this machine kind.
CANDIDATES: dict[str, tuple[str, dict[str, str]]] = {
    "gunicorn sync x5": ("gunicorn", {"TODOSCALE_WORKERS": "5", "TODOSCALE_WORKER_CLASS": "sync"}),
    "gunicorn gthread 2x8": (
        "gunicorn",
        {"TODOSCALE_WORKERS": "2", "TODOSCALE_WORKER_CLASS": "gthread", "TODOSCALE_THREADS": "8"},
    ),
    "granian 2 workers x 4 threads": (
        "granian",
        {"TODOSCALE_WORKERS": "2", "TODOSCALE_BLOCKING_THREADS": "4"},
    ),
}
BASELINE = "gunicorn sync x5"


def _start(name: str, server: str, env: dict[str, str], out: Path) -> tuple[procs.Server, str]:
    port = embedded.free_port()
    argv = [str(procs.BIN / "todoscale"), "serve", "--server", server]
    slug = name.replace(" ", "-")
    proc = procs.Server(name, argv, {**env, "PORT": str(port)}, out / f"server-{slug}.log")
    return proc, f"http://127.0.0.1:{port}"


def _one(url: str, headers: dict[str, str], server: procs.Server, c: int, s: int) -> wrk.Result:
    before = server.cpu_seconds()
    result = wrk.run(url, connections=c, seconds=s, headers=headers)
    result.server_cpu_s = server.cpu_seconds() - before
    return result


def _measure(
    started: dict[str, tuple[procs.Server, str]],
    paths: dict[str, tuple[str, dict[str, str]]],
    c: int,
    runs: int,
    seconds: int,
) -> dict[str, Any]:
    """Warm every server up, then interleave the runs: server by server, path by path."""
    for _, base in started.values():
        for path, headers in paths.values():
            wrk.run(base + path, connections=c, seconds=2, headers=headers)
    results: dict[str, list[wrk.Result]] = {}
    for _ in range(runs):
        for name, (server_proc, base) in started.items():
            for case, (path, headers) in paths.items():
                result = _one(base + path, headers, server_proc, c, seconds)
                results.setdefault(f"{name} {case}", []).append(result)
    return {name: report.summarize(each) for name, each in results.items()}


def run(*, runs: int, seconds: int, connections: list[int], out: Path) -> dict[str, Any]:
    """Measure every candidate on the floor and the reference read; print the table."""
    with tempfile.TemporaryDirectory(prefix="todoscale-bench-servers-") as tmp:
        env = {"TODOSCALE_INSTANCE_PATH": tmp, "TODOSCALE_ENV": "development"}
        embedded.prepare(Path(tmp), env)
        started: dict[str, tuple[procs.Server, str]] = {}
        try:
            for name, (server, extra) in CANDIDATES.items():
                started[name] = _start(name, server, {**env, **extra}, out)
            for server_proc, base in started.values():
                server_proc.wait_ready(f"{base}/healthz")
            auth = {"Authorization": f"Bearer {embedded.token(started[BASELINE][1], 'user1')}"}
            paths = {"floor: GET /healthz": ("/healthz", {}), "read": (embedded.READ_PATH, auth)}
            figures = {c: _measure(started, paths, c, runs, seconds) for c in connections}
        finally:
            for server_proc, _ in started.values():
                server_proc.stop()
    print("\n## Servers (SQLite, embedded instance; ratios against gunicorn sync x5's floor)\n")
    print(report.HEADER)
    for c, by_case in figures.items():
        floor = by_case[f"{BASELINE} floor: GET /healthz"]["requests_per_second"]["median"]
        for name, summary in by_case.items():
            baseline = None if name == f"{BASELINE} floor: GET /healthz" else floor
            print(report.row(name, c, summary, baseline))
    return {str(c): by_case for c, by_case in figures.items()}


def main() -> None:
    """Parse the options, measure, save the JSON next to the server logs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", default="100,1000")
    args = parser.parse_args()
    procs.raise_fd_limit()
    out = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S-servers")
    out.mkdir(parents=True, exist_ok=True)
    connections = [int(c) for c in args.connections.split(",")]
    figures = run(runs=args.runs, seconds=args.seconds, connections=connections, out=out)
    (out / "figures.json").write_text(json.dumps(figures, indent=2))
    print(f"\nFigures and server logs: {out}")


if __name__ == "__main__":
    main()
