"""Rung 1: the embedded default (SQLite, `todoscale serve`), reference read against the floor.

The floor is the same server's trivial JSON endpoint (`/healthz`); the reference read is
`GET /api/v1/todos?limit=10` with a bearer token over 10,000 seeded todos. Two more servers
read the same database: the same server with its cache off (what the cache buys), and the
web process of `todoscale run` (`make run`): one gunicorn gevent worker that also serves
Socket.IO, because without a message queue live updates need a single process.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Any

from todoscale.bench import load as wrk
from todoscale.bench import procs
from todoscale.bench import summary as report
from todoscale.bench.workload import PASSWORD, token

READ_PATH = "/api/v1/todos?limit=10"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def prepare(instance: Path, env: dict[str, str]) -> None:
    """Migrate and seed the reference workload into a fresh instance folder."""
    todoscale = str(procs.BIN / "todoscale")
    procs.run([todoscale, "db", "upgrade"], env)
    print(
        procs.run(
            [todoscale, "seed", "--users", "1", "--todos", "10000", "--password", PASSWORD], env
        ).strip()
    )


def measure(
    cases: dict[str, tuple[str, dict[str, str]]],
    server: procs.Server,
    *,
    connections: int,
    runs: int,
    seconds: int,
    servers: dict[str, procs.Server] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every case `runs` times, interleaved so drift hits them alike; summarize each.

    `servers` names the server of a case whose CPU is not `server`'s.
    """
    results: dict[str, list[wrk.Result]] = {name: [] for name in cases}
    for url, headers in cases.values():
        wrk.run(url, connections=connections, seconds=2, headers=headers)  # warm-up
    for _ in range(runs):
        for name, (url, headers) in cases.items():
            measured = (servers or {}).get(name, server)
            before = measured.cpu_seconds()
            result = wrk.run(url, connections=connections, seconds=seconds, headers=headers)
            result.server_cpu_s = measured.cpu_seconds() - before
            results[name].append(result)
    return {name: report.summarize(each) for name, each in results.items()}


def run(*, runs: int, seconds: int, connections: list[int], out: Path) -> dict[str, Any]:
    """Measure the embedded server; print the table; return the figures."""
    with tempfile.TemporaryDirectory(prefix="todoscale-bench-") as tmp:
        instance = Path(tmp)
        port = free_port()
        env = {
            "TODOSCALE_INSTANCE_PATH": str(instance),
            "TODOSCALE_ENV": "development",
            "PORT": str(port),
        }
        prepare(instance, env)
        server = procs.Server(
            "todoscale serve",
            [str(procs.BIN / "todoscale"), "serve"],
            env,
            out / "embedded-server.log",
        )
        # The same server on the same database with its cache off: what the cache buys.
        uncached_port = free_port()
        uncached = procs.Server(
            "todoscale serve (cache off)",
            [str(procs.BIN / "todoscale"), "serve"],
            {**env, "PORT": str(uncached_port), "TODOSCALE_LOCAL_CACHE": "off"},
            out / "embedded-uncached-server.log",
        )
        run_port = free_port()
        run_web = procs.Server(
            "todoscale serve --socketio",
            [str(procs.BIN / "todoscale"), "serve", "--socketio"],
            {**env, "PORT": str(run_port)},
            out / "embedded-run-web-server.log",
        )
        base, uncached_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{uncached_port}"
        run_base = f"http://127.0.0.1:{run_port}"
        try:
            server.wait_ready(f"{base}/healthz")
            uncached.wait_ready(f"{uncached_base}/healthz")
            run_web.wait_ready(f"{run_base}/healthz")
            auth = {"Authorization": f"Bearer {token(base, 'user1')}"}
            cases = {
                "floor: GET /healthz": (f"{base}/healthz", {}),
                f"read: GET {READ_PATH}": (base + READ_PATH, auth),
                f"read, cache off: GET {READ_PATH}": (uncached_base + READ_PATH, auth),
                f"read, make run's web process: GET {READ_PATH}": (run_base + READ_PATH, auth),
            }
            figures = {
                c: measure(
                    cases,
                    server,
                    connections=c,
                    runs=runs,
                    seconds=seconds,
                    servers={
                        f"read, cache off: GET {READ_PATH}": uncached,
                        f"read, make run's web process: GET {READ_PATH}": run_web,
                    },
                )
                for c in connections
            }
        finally:
            server.stop()
            uncached.stop()
            run_web.stop()
    print("\n## Embedded (SQLite, todoscale serve: its default server and workers)\n")
    print(report.HEADER)
    for c, by_case in figures.items():
        floor = by_case["floor: GET /healthz"]["requests_per_second"]["median"]
        for name, summary in by_case.items():
            print(report.row(name, c, summary, None if name.startswith("floor") else floor))
    return {str(c): by_case for c, by_case in figures.items()}
