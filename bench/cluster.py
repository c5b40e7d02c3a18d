"""Rung 2: scaled out. The reference workload through nginx in front of two instances
(`todoscale cluster up --instances 2`), on PostgreSQL and with Redis when they answer here,
against the embedded single-instance figure measured minutes before in the same run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench import embedded
from todoscale.bench import procs
from todoscale.bench import summary as report
from todoscale.config import load_config
from todoscale.deploy import cluster as local
from todoscale.deploy import probes

POSTGRES_URL = os.environ.get(
    "TODOSCALE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/todoscale_bench"
)
REDIS_URL = os.environ.get("TODOSCALE_REDIS_URL") or "redis://127.0.0.1:6379/14"
INSTANCES = 2


class ClusterCpu:
    """CPU seconds of every process of the cluster: nginx and each instance's group."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the live processes of every program's group."""
        return procs.group_cpu_seconds(set(local.program_pids(self.folder).values()))


def _postgres() -> str | None:
    """A fresh benchmark database on the local PostgreSQL, or None when none answers."""
    return procs.fresh_postgres(POSTGRES_URL)


def _environment(instance: Path) -> tuple[dict[str, str], str]:
    env = {"TODOSCALE_INSTANCE_PATH": str(instance), "TODOSCALE_ENV": "development"}
    database, cache = _postgres(), procs.fresh_redis(REDIS_URL)
    if database:
        env["TODOSCALE_DATABASE_URL"] = database
    if cache:
        env["TODOSCALE_REDIS_URL"] = cache
    backends = f"{'PostgreSQL' if database else 'SQLite'}, {'Redis' if cache else 'no Redis'}"
    return env, backends


def run(
    *, runs: int, seconds: int, connections: list[int], out: Path, embedded_figures: dict[str, Any]
) -> dict[str, Any]:
    """Measure the cluster; print the table against the embedded read; return the figures."""
    with tempfile.TemporaryDirectory(prefix="todoscale-bench-cluster-") as tmp:
        instance = Path(tmp)
        env, backends = _environment(instance)
        embedded.prepare(instance, env)
        port = probes.free_port_run(INSTANCES + 1)  # nginx, then one port per instance
        plan = local.Plan(instance_path=instance, port=port, instances=INSTANCES, env=env)
        plan.server = load_config()["SERVER"]
        base = f"http://127.0.0.1:{port}"
        try:
            local.up(plan)
            auth = {"Authorization": f"Bearer {embedded.token(base, 'user1')}"}
            cases = {
                "cluster floor: GET /healthz": (f"{base}/healthz", {}),
                f"cluster read: GET {embedded.READ_PATH}": (base + embedded.READ_PATH, auth),
            }
            cpu = ClusterCpu(plan.folder)
            figures = {
                c: embedded.measure(cases, cpu, connections=c, runs=runs, seconds=seconds)
                for c in connections
            }
        finally:
            local.down(plan.folder)
            if (plan.folder / "logs").is_dir():
                shutil.copytree(plan.folder / "logs", out / "cluster-logs")
    print(
        f"\n## Scaled out (nginx + {INSTANCES} x todoscale serve --server {plan.server}; "
        f"{backends}), against the embedded read of this run\n"
    )
    print(report.HEADER)
    read = f"read: GET {embedded.READ_PATH}"
    for c, by_case in figures.items():
        baseline = embedded_figures[str(c)][read]["requests_per_second"]["median"]
        print(report.row(f"embedded {read}", c, embedded_figures[str(c)][read], None))
        for name, summary in by_case.items():
            print(report.row(name, c, summary, baseline))
    return {"backends": backends, **{str(c): by_case for c, by_case in figures.items()}}
