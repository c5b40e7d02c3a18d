"""A local cluster: nginx in front of N app and Socket.IO instances, Celery worker and beat,
Redis (unless TODOSCALE_REDIS_URL names one), all under supervisord.

Everything it writes (configuration, logs, pid files, nginx's temporary files) lives in
`<instance folder>/cluster/`. `down` stops every process it started, by process id.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from todoscale.deploy import nginx, servers

SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# The Celery worker's options, under `todoscale run` and in the cluster. Gossip and mingle
# (workers telling each other about themselves) serve nothing here and poll the broker.
CELERY_OPTIONS = ("--loglevel", "INFO", "--without-gossip", "--without-mingle")


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


def _conf(folder: Path) -> Path:
    return folder / "supervisord.conf"


def find_nginx() -> str:
    """The nginx binary (PATH, then the usual sbin folders), or an error saying how to get it."""
    return _find("nginx", "apt-get install nginx (Debian's package)")


def _find(tool: str, how: str) -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    found = shutil.which(tool, path=search)
    if found is None:
        raise ClusterError(f"{tool} is not installed: {how}.")
    return found


def free_port_run(count: int) -> int:
    """The first of `count` consecutive ports all free on 127.0.0.1 right now."""
    return free_ports_at(range(count))


def free_ports_at(offsets: Iterable[int]) -> int:
    """A port P such that P + each of `offsets` is free on 127.0.0.1 right now.

    Chosen below Linux's ephemeral range (32768 and up), where the local ports of outgoing
    connections (other suites' load generators on a shared machine) could take one of them
    between this check and the server's bind.
    """
    offsets = sorted(set(offsets))
    for _ in range(200):
        first = random.randrange(20_000, 32_000 - offsets[-1])
        socks = []
        try:
            for offset in offsets:
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", first + offset))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return first
    raise RuntimeError(f"found no port P with P + {offsets} all free")


def check_port_free(host: str, port: int, hint: str = "choose --port") -> None:
    """Raise ClusterError (saying `hint`) unless `port` on `host` can be bound now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ClusterError(f"port {port} on {host} is taken ({exc}); {hint}.") from exc


def _quote(value: str) -> str:
    # supervisord expands %(name)s in its files and reads values as quoted strings.
    return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'


def program_section(
    name: str,
    command: list[str],
    env: Mapping[str, str],
    log: str,
    stopwaitsecs: int = 35,
    stopasgroup: bool = True,
) -> str:
    """A supervisord [program:name]: restarted whatever its exit, stopped with its whole group.

    `log` is a file, or /dev/stdout (the output goes to supervisord's own terminal).
    `stopasgroup=False` sends the stop signal to the program alone, for one that stops its
    children itself; whatever outlives `stopwaitsecs` is killed with the whole group anyway.
    """
    environment = ",".join(f"{key}={_quote(value)}" for key, value in env.items())
    lines = [
        f"[program:{name}]",
        "command=" + " ".join(_quote(part) if " " in part else part for part in command),
        f"directory={os.getcwd()}",
        "autostart=true",
        # Every process comes back if it dies, whatever its exit status.
        "autorestart=true",
        "startsecs=1",
        "startretries=100",
        # The signal goes to the whole process group: a server's workers stop with it.
        f"stopasgroup={str(stopasgroup).lower()}",
        "killasgroup=true",
        f"stopwaitsecs={stopwaitsecs}",
        f"stdout_logfile={log}",
        # A terminal cannot be rotated (supervisord requires 0 there).
        f"stdout_logfile_maxbytes={0 if log.startswith('/dev/') else '50MB'}",
        "redirect_stderr=true",
    ]
    if environment:
        lines.append(f"environment={environment}")
    return "\n".join(lines) + "\n"


def _program(
    name: str, command: list[str], env: Mapping[str, str], plan: Plan, stopasgroup: bool = True
) -> str:
    log = f"{plan.folder / 'logs' / name}.log"
    return program_section(name, command, env, log, stopasgroup=stopasgroup)


def _app_programs(plan: Plan) -> list[str]:
    programs = []
    for number, port in enumerate(plan.app_ports, start=1):
        env = {
            "TODOSCALE_BIND": f"127.0.0.1:{port}",
            "TODOSCALE_INSTANCE_ID": f"app{number}",
            # nginx is the one proxy in front: the client address is the one it saw.
            "TODOSCALE_TRUSTED_PROXIES": "1",
        }
        if plan.workers:
            env["TODOSCALE_WORKERS"] = str(plan.workers)
        command = [sys.executable, "-m", "todoscale.cli", "serve", "--server", plan.server]
        programs.append(_program(f"app{number}", command, env, plan))
    return programs


def _socketio_programs(plan: Plan) -> list[str]:
    programs = []
    for number, port in enumerate(plan.socketio_ports, start=1):
        env = {
            "TODOSCALE_BIND": f"127.0.0.1:{port}",
            "TODOSCALE_INSTANCE_ID": f"socketio{number}",
            "TODOSCALE_TRUSTED_PROXIES": "1",
        }
        command = [sys.executable, "-m", "todoscale.cli", "serve", "--socketio"]
        programs.append(_program(f"socketio{number}", command, env, plan))
    return programs


def _celery_programs(plan: Plan) -> list[str]:
    worker = servers.celery_argv("worker", *CELERY_OPTIONS)
    schedule = str(plan.folder / "celerybeat-schedule")
    beat = servers.celery_argv("beat", "--loglevel", "INFO", "--schedule", schedule)
    # A Celery worker stops its pool itself (warm shutdown: running jobs finish). A SIGTERM
    # to its pool processes too would have it start new ones and wait for them until killed.
    worker_program = _program("worker", worker, {}, plan, stopasgroup=False)
    return [worker_program, _program("beat", beat, {}, plan)]


def _redis_program(plan: Plan) -> list[str]:
    if not plan.own_redis:
        return []
    how = "apt-get install redis-server, or set TODOSCALE_REDIS_URL"
    command = [_find("redis-server", how), "--bind", "127.0.0.1", "--port", str(plan.redis_port)]
    command += ["--save", "", "--appendonly", "no", "--dir", str(plan.folder)]
    return [_program("redis", command, {}, plan)]


def supervisord_config(plan: Plan, *, nginx: str | None = None) -> str:
    """supervisord.conf: nginx, the app and Socket.IO instances, Celery worker and beat.

    `nginx` is the binary to run; None finds it (and fails, saying how to install it).
    """
    folder = plan.folder
    site = folder / "nginx.conf"
    nginx_cmd = [nginx or find_nginx(), "-p", str(folder), "-c", str(site), "-g", "daemon off;"]
    programs = [
        *_redis_program(plan),
        _program("nginx", nginx_cmd, {}, plan),
        *_app_programs(plan),
        *_socketio_programs(plan),
        *_celery_programs(plan),
    ]
    names = ",".join(f"app{n}" for n in range(1, plan.instances + 1))
    return "\n".join(
        [
            "; Generated by `todoscale cluster up`; rewritten at every start.",
            "[unix_http_server]",
            f"file={folder / 'supervisor.sock'}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"logfile={folder / 'logs' / 'supervisord.log'}",
            f"pidfile={folder / 'supervisord.pid'}",
            f"childlogdir={folder / 'logs'}",
            f"directory={os.getcwd()}",
            "minfds=4096",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{folder / 'supervisor.sock'}",
            "",
            *programs,
            "[group:app]",
            f"programs={names}",
            "",
        ]
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
    _conf(folder).write_text(supervisord_config(plan))


def _supervisorctl(
    folder: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(_conf(folder)), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def supervisord_pid(folder: Path) -> int | None:
    """The pid of the cluster's supervisord if it is alive, else None."""
    try:
        pid = int((folder / "supervisord.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def program_pids(folder: Path) -> dict[str, int]:
    """Each running program's pid (its process group), from supervisord."""
    pids = {}
    for line in _supervisorctl(folder, "status").stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING" and parts[2] == "pid":
            pids[parts[0].split(":")[-1]] = int(parts[3].rstrip(","))
    return pids


def status(folder: Path) -> str:
    """supervisord's view of every program, or a line saying the cluster is not running."""
    if supervisord_pid(folder) is None:
        return f"No cluster is running from {folder}."
    return _supervisorctl(folder, "status").stdout.rstrip()


def _migrate(env: Mapping[str, str]) -> None:
    argv = [sys.executable, "-m", "todoscale.cli", "db", "upgrade"]
    done = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise ClusterError(f"migrating the database failed:\n{done.stdout}{done.stderr}")


def answers(url: str) -> bool:
    """Whether `url` answers 200 now (within 2 s)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_answer(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Poll `url` until it answers 200 (True), or `proc` exits or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if answers(url):
            return True
        time.sleep(0.2)
    return False


def _wait_ready(urls: list[str], timeout: float) -> list[str]:
    """Poll every URL until each answers 200; return those that never did."""
    waiting = list(urls)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        waiting = [url for url in waiting if not answers(url)]
        if waiting:
            time.sleep(0.3)
    return waiting


def up(plan: Plan, timeout: float = 90.0) -> None:
    """Migrate once, write the configuration, start supervisord, wait for every instance;
    stop everything again when they do not all answer within `timeout`."""
    folder = plan.folder
    start(plan)
    urls = [f"http://127.0.0.1:{port}/healthz" for port in plan.app_ports + plan.socketio_ports]
    urls.append(f"http://{plan.host}:{plan.port}/healthz")
    missing = _wait_ready(urls, timeout)
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
    if supervisord_pid(folder) is not None:
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
    argv = [sys.executable, "-m", "supervisor.supervisord", "-c", str(_conf(folder))]
    done = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise ClusterError(f"supervisord did not start:\n{done.stdout}{done.stderr}")


def processes() -> Iterator[tuple[int, list[str]]]:
    """Every process's id and the fields of its /proc stat after the command name (state,
    parent, process group, ..., user and system time at 11 and 12)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        yield int(entry.name), fields


def group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid`."""
    return [pid for pid, fields in processes() if int(fields[2]) == pgid and fields[0] != "Z"]


def _session_members(sid: int) -> list[int]:
    """The live processes of session `sid`: a daemonized supervisord leads one, and every
    program it starts stays in it (each in a process group of its own)."""
    return [pid for pid, fields in processes() if int(fields[3]) == sid and fields[0] != "Z"]


def _runs_supervisord_of(pid: int, folder: Path) -> bool:
    """Whether process `pid` is `supervisord -c <folder>/supervisord.conf`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    wanted = ["supervisor.supervisord", "-c", str(_conf(folder))]
    return any(argv[i : i + 3] == wanted for i in range(len(argv)))


def _supervisord_session(folder: Path) -> int | None:
    """The session id of the folder's supervisord: the pid in its pid file, even when it has
    died (its programs keep the id, and the kernel gives no new process a pid that still
    names a session), else the live `supervisord -c <folder>/supervisord.conf` (it writes
    the pid file only after it has detached from `up`)."""
    try:
        pid = int((folder / "supervisord.pid").read_text().strip())
    except (OSError, ValueError):
        pid = 0
    if pid and (not alive(pid) or _runs_supervisord_of(pid, folder)):
        return pid
    return next((pid for pid, _ in processes() if _runs_supervisord_of(pid, folder)), None)


def down(folder: Path, timeout: float = 60.0) -> list[int]:
    """Stop supervisord and every program it ran, by process id; return the pids stopped.

    Every process of supervisord's session counts, whatever supervisord says of it: a program
    still starting or restarting, a server's workers forked later, a cluster whose `up` gave
    up before supervisord had written its pid file.
    """
    sid = _supervisord_session(folder)
    if sid is None:
        return []
    started = _session_members(sid)
    if not started:
        return []
    deadline = time.monotonic() + timeout
    stopping = False
    if alive(sid):
        with contextlib.suppress(subprocess.TimeoutExpired):
            # Every program at once (supervisord's shutdown alone stops one after another).
            _supervisorctl(folder, "stop", "all", timeout=timeout)
            grace = max(1.0, deadline - time.monotonic())
            stopping = _supervisorctl(folder, "shutdown", timeout=grace).returncode == 0
    if not stopping:  # supervisord cannot be asked (not listening yet, or gone), or is slow
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    while time.monotonic() < deadline and _session_members(sid):
        time.sleep(0.2)
    # Whatever outlived a clean shutdown is killed by id, supervisord first (it would
    # restart the others), until its session is empty.
    for _ in range(10):
        left = _session_members(sid)
        if not left:
            break
        started += [pid for pid in left if pid not in started]
        for pid in sorted(left, key=lambda pid: pid != sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    return started
