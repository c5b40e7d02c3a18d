"""A local cluster: nginx in front of N app and Socket.IO instances, Celery worker and beat,
Redis (unless TODOSCALE_REDIS_URL names one), all under supervisord.

Everything it writes (configuration, logs, pid files, nginx's temporary files) lives in
`<instance folder>/cluster/`. `down` stops every process it started, by process id.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from todoscale.deploy import control, nginx, probes, programs, supervisord

SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class ClusterError(RuntimeError):
    """The cluster cannot do what was asked; the message says why and what to do."""


@dataclass
class Plan:
    """What `up` starts: ports, the folder, and the environment every process shares."""

    instance_path: Path
    port: int
    instances: int = 2
    app_port: int = 0
    socketio_port: int = 0
    server: str = "gunicorn"
    workers: int | None = None
    tls_port: int | None = None
    certificate: str | None = None
    certificate_key: str | None = None
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)
    # Redis carries the Socket.IO events between processes, the Celery queue and the cache.
    # None: the cluster runs a redis-server of its own on `redis_port` (nothing persisted:
    # the job table, not the queue, is the record of what is left to do).
    redis_url: str | None = None
    redis_port: int = 0

    def __post_init__(self) -> None:
        self.app_port = self.app_port or self.port + 1
        self.socketio_port = self.socketio_port or self.port + 100
        self.redis_port = self.redis_port or self.port + 200
        self.redis_url = self.redis_url or self.env.get("TODOSCALE_REDIS_URL") or None

    @property
    def own_redis(self) -> bool:
        """Whether the cluster runs its own redis-server (no TODOSCALE_REDIS_URL given)."""
        return self.redis_url is None

    @property
    def redis(self) -> str:
        """The Redis every process of the cluster uses."""
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def socketio_ports(self) -> list[int]:
        """One Socket.IO service per app instance, consecutive from `socketio_port`."""
        return [self.socketio_port + i for i in range(self.instances)]

    @property
    def local_ports(self) -> list[int]:
        """Every port the cluster's processes listen on at 127.0.0.1 (nginx's aside)."""
        return [*self.app_ports, *self.socketio_ports, *([self.redis_port] * self.own_redis)]

    @property
    def folder(self) -> Path:
        """instance/cluster: the only place the cluster writes to."""
        return self.instance_path / "cluster"

    @property
    def app_ports(self) -> list[int]:
        """One port per app instance, consecutive from `app_port`."""
        return [self.app_port + i for i in range(self.instances)]


def find_nginx() -> str:
    """The nginx binary (PATH, then the usual sbin folders), or an error saying how to get it."""
    return _find("nginx", "apt-get install nginx (Debian's package)")


def _find(tool: str, how: str) -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    found = shutil.which(tool, path=search)
    if found is None:
        raise ClusterError(f"{tool} is not installed: {how}.")
    return found


def check_port_free(host: str, port: int, hint: str = "choose --port") -> None:
    """Raise ClusterError (saying `hint`) unless `port` on `host` can be bound now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ClusterError(f"port {port} on {host} is taken ({exc}); {hint}.") from exc


def _host(plan: Plan) -> programs.Host:
    # This Python, this checkout; each program's log in logs/, beat's schedule beside them.
    return programs.Host(logs=str(plan.folder / "logs"), state=str(plan.folder))


def _redis_program(plan: Plan) -> list[supervisord.Program]:
    if not plan.own_redis:
        return []
    how = "apt-get install redis-server, or set TODOSCALE_REDIS_URL"
    command = [_find("redis-server", how), "--bind", "127.0.0.1", "--port", str(plan.redis_port)]
    command += ["--save", "", "--appendonly", "no", "--dir", str(plan.folder)]
    return [_host(plan).program("redis", command)]


def supervisord_config(plan: Plan, *, nginx: str | None = None) -> str:
    """supervisord.conf: nginx, the app and Socket.IO instances, Celery worker and beat.

    `nginx` is the binary to run; None finds it (and fails, saying how to install it).
    """
    host = _host(plan)
    folder, site = str(plan.folder), str(plan.folder / "nginx.conf")
    nginx_cmd = [nginx or find_nginx(), "-p", folder, "-c", site, "-g", "daemon off;"]
    apps = [
        programs.app(host, n, f"127.0.0.1:{port}", plan.server, plan.workers)
        for n, port in enumerate(plan.app_ports, start=1)
    ]
    listed = [
        *_redis_program(plan),
        host.program("nginx", nginx_cmd),
        *apps,
        *(programs.socketio(host, n, f"127.0.0.1:{port}")
          for n, port in enumerate(plan.socketio_ports, start=1)),
        programs.worker(host),
        programs.beat(host),
    ]  # fmt: skip
    return supervisord.render(
        "Generated by `todoscale cluster up`; rewritten at every start.",
        listed,
        {"app": [program.name for program in apps]},
        supervisord.Daemon(plan.folder, logs=plan.folder / "logs"),
    )


def write_files(plan: Plan) -> None:
    """Write the nginx site and main configuration and supervisord.conf into the folder."""
    folder = plan.folder
    for sub in ("logs", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    site = nginx.Site(
        app_servers=[f"127.0.0.1:{port}" for port in plan.app_ports],
        socketio_servers=[f"127.0.0.1:{port}" for port in plan.socketio_ports],
        http_listen=f"{plan.host}:{plan.port}",
        tls=plan.tls_port is not None,
        https_listen=f"{plan.host}:{plan.tls_port}",
        https_port=plan.tls_port or 443,
        ssl_certificate=plan.certificate or "",
        ssl_certificate_key=plan.certificate_key or "",
        static_dir=str(nginx.STATIC_DIR),
        access_log=str(folder / "logs" / "nginx-access.log"),
    )
    (folder / "todoscale.conf").write_text(nginx.render(site))
    (folder / "nginx.conf").write_text(nginx.main_config(folder / "todoscale.conf", folder))
    supervisord.config_path(folder).write_text(supervisord_config(plan))


def supervisord_pid(folder: Path) -> int | None:
    """The pid of the cluster's supervisord if it answers, else None."""
    return control.supervisord_pid(folder)


def program_pids(folder: Path) -> dict[str, int]:
    """Each running program's pid (its process group), from supervisord."""
    return control.running_pids(folder)


def status(folder: Path) -> str:
    """supervisord's view of every program, or a line saying the cluster is not running."""
    try:
        return control.status_lines(control.programs(folder))
    except control.UNREACHABLE:
        return f"No cluster is running from {folder}."


def _migrate(env: Mapping[str, str]) -> None:
    argv = [sys.executable, "-m", "todoscale.cli", "db", "upgrade"]
    done = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise ClusterError(f"migrating the database failed:\n{done.stdout}{done.stderr}")


def up(plan: Plan, timeout: float = 90.0) -> None:
    """Migrate once, write the configuration, start supervisord, wait for every instance;
    stop everything again when they do not all answer within `timeout`."""
    folder = plan.folder
    start(plan)
    urls = [f"http://127.0.0.1:{port}/healthz" for port in plan.app_ports + plan.socketio_ports]
    urls.append(f"http://{plan.host}:{plan.port}/healthz")
    missing = probes.wait_ready(urls, timeout)
    if missing:
        report = status(folder)
        down(folder, timeout=10)  # nothing has served yet: no need for a long grace
        raise ClusterError(
            f"the cluster did not become ready ({', '.join(missing)} never answered);\n"
            f"{report}\nlogs: {folder / 'logs'}"
        )


def start(plan: Plan) -> None:
    """Migrate once, write the configuration and start supervisord (it starts the rest)."""
    folder = plan.folder
    if control.listening(folder):
        raise ClusterError(f"a cluster is already running from {folder}: `todoscale cluster down`.")
    for port in [plan.port, *([plan.tls_port] if plan.tls_port else [])]:
        check_port_free(plan.host, port)
    for port in plan.local_ports:
        check_port_free("127.0.0.1", port, hint="choose --port or --app-port")
    env = {
        **plan.env,
        "TODOSCALE_INSTANCE_PATH": str(plan.instance_path),
        "TODOSCALE_REDIS_URL": plan.redis,
    }
    # Once, before the instances start: each `serve` migrates too, and they must not race.
    _migrate(env)
    write_files(plan)
    # It returns once supervisord has opened its socket and detached: `down` can reach it.
    done = subprocess.run(
        supervisord.command(folder),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise ClusterError(f"supervisord did not start:\n{done.stdout}{done.stderr}")


def down(folder: Path, timeout: float = 60.0) -> list[int]:
    """Stop supervisord and every program it ran, by process id; return their pids.

    Every program that has a process counts, still starting or restarting, with whatever
    it forked (its process group): see `control.stop`.
    """
    return control.stop(folder, timeout)
