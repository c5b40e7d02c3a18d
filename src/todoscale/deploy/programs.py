"""todoscale's programs under supervisord, for any host: app and Socket.IO instances, the
Celery worker and beat.

The local cluster runs them with this Python in its folder; deploy/supervisor/todoscale.conf
(`example`) runs them from an installation in /srv; `todoscale run` runs its worker.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from todoscale.config import VARIABLES
from todoscale.deploy import nginx
from todoscale.deploy.supervisord import Program, render

# The Celery worker's options, wherever it runs. Gossip and mingle (workers telling each
# other about themselves) serve nothing here and poll the broker.
CELERY_OPTIONS = ("--loglevel", "INFO", "--without-gossip", "--without-mingle")


@dataclass(frozen=True)
class Host:
    """How a set-up runs the programs: their commands, folders, user and environment.

    `logs` holds `<program>.log` (None: every program writes to supervisord's terminal);
    beat keeps its schedule in `state`; `passed` names the variables every program takes
    from supervisord's own environment, `env` those set here.
    """

    todoscale: tuple[str, ...] = (sys.executable, "-m", "todoscale.cli")
    celery: tuple[str, ...] = (sys.executable, "-m", "celery")
    directory: str = field(default_factory=os.getcwd)
    logs: str | None = None
    state: str = "."
    env: Mapping[str, str] = field(default_factory=dict)
    passed: tuple[str, ...] = ()
    user: str | None = None

    def program(
        self,
        name: str,
        command: list[str],
        env: Mapping[str, str] | None = None,
        *,
        stopasgroup: bool = True,
        comment: str = "",
    ) -> Program:
        """A program of this host: its directory, user, log and environment."""
        return Program(
            name=name,
            command=command,
            log="/dev/stdout" if self.logs is None else f"{self.logs}/{name}.log",
            directory=self.directory,
            env={**self.env, **(env or {})},
            passed=self.passed,
            user=self.user,
            stopasgroup=stopasgroup,
            comment=comment,
        )

    def celery_argv(self, *args: str) -> list[str]:
        """`celery -A todoscale.worker <args>` as this host runs Celery."""
        return [*self.celery, "-A", "todoscale.worker", *args]


def app(host: Host, number: int, bind: str, server: str, workers: int | None = None) -> Program:
    """App instance `app<number>`: `todoscale serve` on `bind`, behind nginx."""
    env = {
        VARIABLES["BIND"]: bind,
        VARIABLES["INSTANCE_ID"]: f"app{number}",
        # nginx is the one proxy in front: the client address is the one it saw.
        VARIABLES["TRUSTED_PROXIES"]: "1",
    }
    if workers:
        env[VARIABLES["WORKERS"]] = str(workers)
    return host.program(f"app{number}", [*host.todoscale, "serve", "--server", server], env)


def socketio(host: Host, number: int, bind: str) -> Program:
    """Socket.IO service `socketio<number>` on `bind`, behind nginx."""
    env = {
        VARIABLES["BIND"]: bind,
        VARIABLES["INSTANCE_ID"]: f"socketio{number}",
        VARIABLES["TRUSTED_PROXIES"]: "1",
    }
    command = [*host.todoscale, "serve", "--socketio"]
    comment = (
        "One gevent worker holds every connection of a Socket.IO service: add services (and\n"
        "servers to nginx's todoscale_socketio upstream) rather than workers."
    )
    return host.program(f"socketio{number}", command, env, comment=comment * (number == 1))


def worker(host: Host, *options: str) -> Program:
    """The Celery worker, with `options` after the common ones."""
    comment = (
        "A stopping worker finishes the jobs it holds and stops its pool itself (the signal\n"
        "goes to it alone: a SIGTERM to its pool processes too would have it start new ones\n"
        "and wait for them); a job cut short by the kill is taken over when its lease expires."
    )
    command = host.celery_argv("worker", *CELERY_OPTIONS, *options)
    return host.program("worker", command, stopasgroup=False, comment=comment)


def beat(host: Host) -> Program:
    """Celery beat, its schedule in the host's state folder."""
    schedule = f"{host.state}/celerybeat-schedule"
    command = host.celery_argv("beat", "--loglevel", "INFO", "--schedule", schedule)
    comment = "Exactly one beat per deployment: it re-sends stalled jobs, finds todos coming due."
    return host.program("beat", command, comment=comment)


# An installation in /srv/todoscale run by the user todoscale, its state in /var/lib.
EXAMPLE_HOST = Host(
    todoscale=("/srv/todoscale/.venv/bin/todoscale",),
    celery=("/srv/todoscale/.venv/bin/celery",),
    directory="/srv/todoscale",
    logs="/var/log/todoscale",
    state="/var/lib/todoscale",
    env={VARIABLES["ENV_NAME"]: "production", VARIABLES["INSTANCE_PATH"]: "/var/lib/todoscale"},
    passed=tuple(
        VARIABLES[name] for name in ("SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "REDIS_URL")
    ),
    user="todoscale",
)

_EXAMPLE_HEADER = """\
todoscale on one host under supervisord: copy into /etc/supervisor/conf.d/, adjust the
paths and the user. The programs `todoscale cluster up` runs (it adds nginx, and Redis when
TODOSCALE_REDIS_URL is unset), on the ports of the upstreams of deploy/nginx/todoscale.conf.
Migrate once before starting them: `todoscale db upgrade`.
The secrets come from supervisord's own environment (%(ENV_...)s), e.g. the EnvironmentFile
of its systemd unit: TODOSCALE_SECRET_KEY, TODOSCALE_DATABASE_URL, TODOSCALE_REDIS_URL.
Generated by `make deploy-files` (todoscale.deploy.programs.example): edit that, not this."""


def example(host: Host = EXAMPLE_HOST, site: nginx.Site | None = None) -> str:
    """deploy/supervisor/todoscale.conf: a drop-in for `host`, one app and one Socket.IO
    instance per server of the nginx `site`'s upstreams (its defaults: nginx.Site())."""
    site = site or nginx.Site()
    programs = [
        *(app(host, n, bind, "granian") for n, bind in enumerate(site.app_servers, start=1)),
        *(socketio(host, n, bind) for n, bind in enumerate(site.socketio_servers, start=1)),
        worker(host),
        beat(host),
    ]
    groups = {"todoscale": [program.name for program in programs]}
    return render(_EXAMPLE_HEADER, programs, groups)
