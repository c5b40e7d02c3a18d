"""The servers of the ladder: each a real configuration of todoscale (or a floor app), on
its own scratch instance folder and its own 127.0.0.1 ports, stopped by process id."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from todoscale.bench import procs, workload
from todoscale.config import Settings, metrics_root
from todoscale.deploy import cluster as local
from todoscale.deploy import embedded, servers
from todoscale.ops import control

CORES = os.cpu_count() or 1
# The articles' gunicorn rule: 2 x cores + 1 workers.
SYNC_WORKERS = 2 * CORES + 1
CACHE_OFF = {"TODOSCALE_LOCAL_CACHE": "off"}


@dataclass
class Context:
    """Where the bench writes, which ports it may take, and what answered here."""

    scratch: Path
    out: Path
    ports: procs.Ports
    template: Path
    postgres_url: str | None = None
    postgres_template: Path | None = None
    redis_url: str | None = None
    naive_database: Path | None = None
    notes: list[str] = field(default_factory=list)


class Target(Protocol):
    """A started server: where it answers, its CPU, and how to stop it."""

    name: str
    base: str
    ready_path: str

    def wait_ready(self) -> None:
        """Block until it answers (or raise with its log)."""

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by every process it runs."""

    def stop(self) -> None:
        """Stop every process it started, by id."""

    def pids(self) -> set[int]:
        """The process ids (and group ids) it started, to check none is left."""


class Single:
    """One command in its own process group."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], ctx: Context, ready: str
    ) -> None:
        self.name = name
        self.port = ctx.ports.take()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready
        log = ctx.out / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        # The port is known only once taken: `{port}` in the command line stands for it.
        argv = [part.replace("{port}", str(self.port)) for part in argv]
        self.server = procs.Server(
            name, argv, {**env, "PORT": str(self.port)}, log, cwd=ctx.scratch, clean=True
        )

    def wait_ready(self) -> None:
        """Block until the ready path answers 200."""
        self.server.wait_ready(self.base + self.ready_path)

    def cpu_seconds(self) -> float:
        """CPU seconds of the process group."""
        return self.server.cpu_seconds()

    def stop(self) -> None:
        """Stop the group."""
        self.server.stop()

    def pids(self) -> set[int]:
        """The group's id."""
        return self.server.pids


class Embedded(Single):
    """`todoscale run` (what `make run` starts): supervisord with granian (HTTP), the Socket.IO
    service on a port of its own (taken here, never `PORT + 1`, which another set-up may hold),
    a Celery worker and beat; each program in a process group of its own."""

    def __init__(self, name: str, instance: Path, ctx: Context) -> None:
        live = {"TODOSCALE_SOCKETIO_PORT": str(ctx.ports.take())}
        super().__init__(
            name,
            [str(procs.BIN / "todoscale"), "run"],
            {**workload.environment(instance), **live},
            ctx,
            "/healthz",
        )
        self.folder = embedded.folder(instance)
        self._programs: set[int] = set()

    def wait_ready(self) -> None:
        """Block until the web process answers; note every program's group."""
        super().wait_ready()
        self._programs = set(local.program_pids(self.folder).values())

    def cpu_seconds(self) -> float:
        """CPU seconds of supervisord and of every program's group."""
        return procs.group_cpu_seconds({*self.server.pids, *self._programs})

    def stop(self) -> None:
        """supervisord shuts its programs down (killed by id if they linger), then the group."""
        local.down(self.folder)
        self.server.stop()

    def pids(self) -> set[int]:
        """supervisord's group and its programs' groups."""
        return {*self.server.pids, *self._programs}


class Cluster:
    """`todoscale cluster up`: nginx in front of N instances (and their Socket.IO services, a
    Celery worker and beat) under supervisord."""

    def __init__(self, name: str, plan: local.Plan, out: Path) -> None:
        self.name = name
        self.plan = plan
        self._logs = out / "logs" / name
        self.base = f"http://127.0.0.1:{plan.port}"
        self.ready_path = "/healthz"
        self._pids: set[int] = set()

    def wait_ready(self) -> None:
        """Start it (up() waits for every instance)."""
        local.up(self.plan)
        supervisor = local.supervisord_pid(self.plan.folder)
        self._pids = set(local.program_pids(self.plan.folder).values())
        self._pids |= {supervisor} if supervisor else set()

    def cpu_seconds(self) -> float:
        """CPU seconds of nginx and every instance's group."""
        return procs.group_cpu_seconds(set(local.program_pids(self.plan.folder).values()))

    def stop(self) -> None:
        """`todoscale cluster down`: by process id; its logs kept with the results."""
        local.down(self.plan.folder)
        if (self.plan.folder / "logs").is_dir():
            shutil.copytree(self.plan.folder / "logs", self._logs, dirs_exist_ok=True)

    def pids(self) -> set[int]:
        """supervisord and every program's group."""
        return set(self._pids)


def _serve(server: str) -> list[str]:
    return [str(procs.BIN / "todoscale"), "serve", "--server", server]


def _flask_run() -> list[str]:
    # The articles' starting point: Flask's development server (Werkzeug, a thread per request).
    return [sys.executable, "-m", "flask", "--app", "todoscale.wsgi:app", "run", "--host",
            "127.0.0.1", "--port", "{port}"]  # fmt: skip


def _granian(app: str) -> list[str]:
    # The floors under exactly the settings `todoscale serve` gives granian.
    options = servers.granian_options(CORES, Settings.model_fields["BLOCKING_THREADS"].default)
    return [sys.executable, "-m", "granian", *options, "--host", "127.0.0.1", "--port", "{port}",
            app]  # fmt: skip


def _single(name: str, argv: list[str], env: dict[str, str], ctx: Context, ready: str) -> Single:
    return Single(name, argv, env, ctx, ready)


def _copy(ctx: Context, name: str, template: Path | None = None) -> Path:
    return workload.copy(template or ctx.template, ctx.scratch / name)


def dev_noindex(ctx: Context) -> Target:
    """Rung 1: `flask run`, the (list, created_at) index dropped, cache off."""
    instance = _copy(ctx, "dev-noindex")
    workload.drop_index(instance)
    env = {**workload.environment(instance), **CACHE_OFF}
    return _single("flask-run-no-index", _flask_run(), env, ctx, "/healthz")


def dev_index(ctx: Context) -> Target:
    """Rung 2: `flask run` with the index, cache off."""
    env = {**workload.environment(_copy(ctx, "dev-index")), **CACHE_OFF}
    return _single("flask-run", _flask_run(), env, ctx, "/healthz")


def gunicorn_sync(ctx: Context) -> Target:
    """Rung 3: gunicorn's sync workers, 2 x cores + 1 of them, cache off."""
    env = {**workload.environment(_copy(ctx, "gunicorn-sync")), **CACHE_OFF}
    env |= {"TODOSCALE_WORKERS": str(SYNC_WORKERS), "TODOSCALE_WORKER_CLASS": "sync"}
    return _single("gunicorn-sync", _serve("gunicorn"), env, ctx, "/healthz")


def gunicorn_gevent(ctx: Context) -> Target:
    """Rung 4: gunicorn's gevent workers (the articles' meinheld no longer builds), cache off."""
    env = {**workload.environment(_copy(ctx, "gunicorn-gevent")), **CACHE_OFF}
    env |= {"TODOSCALE_WORKERS": str(SYNC_WORKERS), "TODOSCALE_WORKER_CLASS": "gevent"}
    return _single("gunicorn-gevent", _serve("gunicorn"), env, ctx, "/healthz")


def granian(ctx: Context) -> Target:
    """Rungs 4 and 5: granian (one worker per core, 4 blocking threads each), cache off."""
    env = {**workload.environment(_copy(ctx, "granian")), **CACHE_OFF}
    return _single("granian", _serve("granian"), env, ctx, "/healthz")


def _plan(ctx: Context, instance: Path, env: dict[str, str], instances: int) -> local.Plan:
    port = ctx.ports.take()
    plan = local.Plan(
        instance_path=instance,
        port=port,
        instances=instances,
        app_port=ctx.ports.take(instances),
        socketio_port=ctx.ports.take(instances),
        redis_port=ctx.ports.take(),
        server="granian",
        env=env,
    )
    return plan


def nginx(ctx: Context) -> Target:
    """Rung 6: nginx in front of one granian instance per core (one worker each), cache off;
    the cluster's own Redis (for Socket.IO and Celery, not the cache)."""
    instance = _copy(ctx, "nginx")
    plan = _plan(ctx, instance, {**workload.environment(instance), **CACHE_OFF}, CORES)
    plan.workers = 1
    return Cluster("nginx-instances", plan, ctx.out)


def cached(ctx: Context) -> Target:
    """Rung 7: granian with the local cache tier (SQLite: stamps in the instance folder)."""
    env = workload.environment(_copy(ctx, "cached"))
    return _single("granian-cached", _serve("granian"), env, ctx, "/healthz")


def shared(ctx: Context) -> Target:
    """Rung 7 on PostgreSQL with Redis: the local tier (stamps in Redis) and the shared tier."""
    assert ctx.postgres_url and ctx.redis_url and ctx.postgres_template
    instance = _copy(ctx, "shared", ctx.postgres_template)
    env = workload.environment(instance, ctx.postgres_url)
    env["TODOSCALE_REDIS_URL"] = ctx.redis_url
    return _single("granian-postgres-redis", _serve("granian"), env, ctx, "/healthz")


def cached_unobserved(ctx: Context) -> Target:
    """Rung 7's server with the always-on layer off (TODOSCALE_OBSERVE=0)."""
    env = {**workload.environment(_copy(ctx, "cached-unobserved")), "TODOSCALE_OBSERVE": "0"}
    return _single("granian-cached-unobserved", _serve("granian"), env, ctx, "/healthz")


def granian_unobserved(ctx: Context) -> Target:
    """Rung 5's server (cache off) with the always-on layer off (TODOSCALE_OBSERVE=0)."""
    env = {**workload.environment(_copy(ctx, "granian-unobserved")), **CACHE_OFF}
    env["TODOSCALE_OBSERVE"] = "0"
    return _single("granian-unobserved", _serve("granian"), env, ctx, "/healthz")


class Profiled(Single):
    """Rung 7's server with a profile order armed on another endpoint (the lists) for as
    long as an order may last: every request pays the check, none is profiled."""

    def __init__(self, ctx: Context) -> None:
        self.instance = _copy(ctx, "cached-profiled")
        env = workload.environment(self.instance)
        super().__init__("granian-cached-profiled", _serve("granian"), env, ctx, "/healthz")

    def wait_ready(self) -> None:
        """Block until it answers, then arm the order (every worker sees it within 1 s)."""
        super().wait_ready()
        root = Path(metrics_root({"INSTANCE_PATH": str(self.instance)}))
        control.arm(root, "/api/v1/lists", control.MAX_PROFILES, control.MAX_PROFILE_SECONDS,
                    "bench")  # fmt: skip
        time.sleep(2 * control.POLL_SECONDS)


def cached_profiled(ctx: Context) -> Target:
    """Rung 7's server, a profile armed on another endpoint."""
    return Profiled(ctx)


def make_run(ctx: Context) -> Target:
    """Rung 8: todoscale as shipped, embedded: `todoscale run`, as `make run` starts it."""
    return Embedded("todoscale-run", _copy(ctx, "run"), ctx)


def scaled_out(ctx: Context) -> Target:
    """Rung 8 scaled out: `todoscale cluster up` as shipped, on PostgreSQL and Redis."""
    assert ctx.postgres_url and ctx.redis_url and ctx.postgres_template
    instance = _copy(ctx, "cluster", ctx.postgres_template)
    env = workload.environment(instance, ctx.postgres_url)
    env["TODOSCALE_REDIS_URL"] = ctx.redis_url
    plan = _plan(ctx, instance, env, CORES)
    return Cluster("cluster", plan, ctx.out)


# The writes' servers raise the per-user write limit (600 a minute) for the bench's writer:
# the limit stays on, out of the way of a load test.
WRITE_LIMIT = {"TODOSCALE_API_WRITE_LIMIT": "10000000 per minute"}


def write_sqlite(ctx: Context) -> Target:
    """The write path on SQLite: `todoscale serve` (granian) as shipped, write limit raised."""
    env = {**workload.environment(_copy(ctx, "write-sqlite")), **WRITE_LIMIT}
    return _single("granian-writes", _serve("granian"), env, ctx, "/healthz")


def write_postgres(ctx: Context) -> Target:
    """The write path on PostgreSQL with Redis, write limit raised."""
    assert ctx.postgres_url and ctx.redis_url and ctx.postgres_template
    instance = _copy(ctx, "write-postgres", ctx.postgres_template)
    env = {**workload.environment(instance, ctx.postgres_url), **WRITE_LIMIT}
    env["TODOSCALE_REDIS_URL"] = ctx.redis_url
    return _single("granian-writes-postgres", _serve("granian"), env, ctx, "/healthz")


def naive_write(ctx: Context) -> Target:
    """Floor of the writes: the naive port's POST, on a copy of its database of its own."""
    assert ctx.naive_database is not None
    copy = ctx.scratch / "naive-write.db"
    shutil.copyfile(ctx.naive_database, copy)
    env = {"NAIVE_DATABASE": str(copy)}
    return _single("floor-naive-write", _granian("todoscale.bench.floors:naive"), env, ctx, "/todo")


def hello(ctx: Context) -> Target:
    """Floor: the bare Flask hello-JSON app under granian with the service's settings."""
    return _single("floor-hello", _granian("todoscale.bench.floors:hello"), {}, ctx, "/index")


def naive(ctx: Context) -> Target:
    """Floor: the naive todo port (raw sqlite3, index on created_at) under the same granian."""
    assert ctx.naive_database is not None
    env = {"NAIVE_DATABASE": str(ctx.naive_database)}
    return _single("floor-naive", _granian("todoscale.bench.floors:naive"), env, ctx, "/todo")


SETUPS: dict[str, Callable[[Context], Target]] = {
    "dev-noindex": dev_noindex,
    "dev-index": dev_index,
    "gunicorn-sync": gunicorn_sync,
    "gunicorn-gevent": gunicorn_gevent,
    "granian": granian,
    "nginx": nginx,
    "cached": cached,
    "shared": shared,
    "cached-unobserved": cached_unobserved,
    "granian-unobserved": granian_unobserved,
    "cached-profiled": cached_profiled,
    "run": make_run,
    "cluster": scaled_out,
    "hello": hello,
    "naive": naive,
    "write-sqlite": write_sqlite,
    "write-postgres": write_postgres,
    "naive-write": naive_write,
}
# Setups that need PostgreSQL and Redis to answer here.
NEEDS_SERVICES = {"shared", "cluster", "write-postgres"}
