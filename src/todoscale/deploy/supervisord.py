"""supervisord's configuration, rendered for every set-up that runs todoscale under it.

`todoscale run`, the local cluster and deploy/supervisor/todoscale.conf (a host's drop-in)
are each a list of `Program`s and groups rendered by `render`; the first two add the
supervisord that runs them (`Daemon`), whose socket `control` talks to.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def config_path(folder: Path) -> Path:
    """The configuration file of the supervisord that keeps its files in `folder`."""
    return folder / "supervisord.conf"


def socket_path(folder: Path) -> Path:
    """The unix socket of its XML-RPC interface."""
    return folder / "supervisor.sock"


def command(folder: Path) -> list[str]:
    """The command line that starts the supervisord of `folder` with this Python."""
    return [sys.executable, "-m", "supervisor.supervisord", "-c", str(config_path(folder))]


def _escape(value: str) -> str:
    # supervisord expands %(name)s in every value before it reads it.
    return value.replace("%", "%%")


def _quote(value: str) -> str:
    # An environment value. supervisord reads it with a non-POSIX shlex (no escapes inside
    # quotes) and strips quote characters from its ends: quote with the kind it lacks.
    mark = "'" if '"' in value else '"'
    if mark in value or {value[:1], value[-1:]} & {'"', "'"}:
        raise ValueError(f"supervisord cannot read the value {value!r} back as it is")
    return mark + _escape(value) + mark


@dataclass
class Program:
    """One [program:name] section.

    `log` is a file, or /dev/stdout (the output goes to supervisord's own terminal).
    `passed` names variables taken from supervisord's own environment (`%(ENV_NAME)s`): it
    refuses to start when one is missing. `stopasgroup=False` sends the stop signal to the
    program alone, for one that stops its children itself; whatever outlives
    `stopwaitsecs` is killed with the whole group anyway.
    """

    name: str
    command: Sequence[str]
    log: str
    directory: str
    env: Mapping[str, str] = field(default_factory=dict)
    passed: Sequence[str] = ()
    user: str | None = None
    stopasgroup: bool = True
    stopwaitsecs: int = 35
    comment: str = ""

    def section(self) -> str:
        """The section's text, its comment first."""
        environment = [f"{key}={_quote(value)}" for key, value in self.env.items()]
        environment += [f'{name}="%(ENV_{name})s"' for name in self.passed]
        values = {
            "command": " ".join(shlex.quote(_escape(part)) for part in self.command),
            "directory": self.directory,
            **({"user": self.user} if self.user else {}),
            **({"environment": ",".join(environment)} if environment else {}),
            "autostart": "true",
            # Every process comes back if it dies, whatever its exit status.
            "autorestart": "true",
            "startsecs": "1",
            "startretries": "100",
            # The signal goes to the whole process group: a server's workers stop with it.
            "stopasgroup": str(self.stopasgroup).lower(),
            "killasgroup": "true",
            "stopwaitsecs": str(self.stopwaitsecs),
            "stdout_logfile": self.log,
            # A terminal cannot be rotated (supervisord requires 0 there).
            "stdout_logfile_maxbytes": "0" if self.log.startswith("/dev/") else "50MB",
            "redirect_stderr": "true",
        }
        lines = [f"; {line}".rstrip() for line in self.comment.splitlines()]
        lines += [f"[program:{self.name}]", *(f"{key}={value}" for key, value in values.items())]
        return "\n".join(lines) + "\n"


@dataclass
class Daemon:
    """The supervisord itself: its socket, pid file and configuration live in `folder`.

    `logs` is where it writes its own log; None keeps it in the foreground, its messages on
    its terminal (`todoscale run`).
    """

    folder: Path
    logs: Path | None = None

    def sections(self) -> str:
        """[unix_http_server], [supervisord], [rpcinterface:supervisor], [supervisorctl]."""
        if self.logs is None:
            # In the foreground it prints its own messages to its terminal already.
            own = ["nodaemon=true", "logfile=/dev/null", "logfile_maxbytes=0"]
        else:
            own = [f"logfile={self.logs / 'supervisord.log'}"]
        sock = socket_path(self.folder)
        return "\n".join(
            [
                "[unix_http_server]",
                f"file={sock}",
                "chmod=0700",
                "",
                "[supervisord]",
                *own,
                f"pidfile={self.folder / 'supervisord.pid'}",
                f"childlogdir={self.logs or self.folder}",
                f"directory={Path.cwd()}",
                "minfds=4096",
                "",
                # The interface `control` stops and queries it through.
                "[rpcinterface:supervisor]",
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
                "",
                "[supervisorctl]",
                f"serverurl=unix://{sock}",
                "",
            ]
        )


def render(
    header: str,
    programs: Sequence[Program],
    groups: Mapping[str, Sequence[str]],
    daemon: Daemon | None = None,
) -> str:
    """A whole configuration: `header` (comment lines), the daemon's sections (none for a
    drop-in), each group (name: its programs), then each program."""
    parts = ["\n".join(f"; {line}".rstrip() for line in header.splitlines()) + "\n"]
    if daemon is not None:
        parts.append(daemon.sections())
    for name, members in groups.items():
        parts.append(f"[group:{name}]\nprograms={','.join(members)}\n")
    parts += [program.section() for program in programs]
    return "\n".join(parts)
