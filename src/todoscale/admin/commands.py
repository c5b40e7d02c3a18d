"""`todoscale admin grant|revoke USER` and `todoscale profile PID` (py-spy, for a stuck process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from todoscale.exceptions import TodoscaleError
from todoscale.services import monitoring

PERMISSIONS = (
    "py-spy reads another process's memory, which Linux allows only to root, to a holder of "
    "CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE), or to the process's own user when "
    "/proc/sys/kernel/yama/ptrace_scope is 0 (1, Debian's default, allows only a parent). "
    "Run it as root (sudo), as the service's user with ptrace_scope 0, or add the capability."
)


group = AppGroup("admin", help="Admin roles: who may open /admin/ and read /metrics.")


def _set(username: str, admin: bool) -> None:
    try:
        user = monitoring.set_admin(username, admin, by=f"cli:{os.getenv('USER', '?')}")
    except TodoscaleError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"{user.username} is {'now' if admin else 'no longer'} an admin.")


@group.command("grant")
@click.argument("username")
def grant(username: str) -> None:
    """Make USERNAME an admin."""
    _set(username, True)


@group.command("revoke")
@click.argument("username")
def revoke(username: str) -> None:
    """Take the admin role from USERNAME."""
    _set(username, False)


def py_spy() -> str:
    """The py-spy binary installed with the package (next to this Python), or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise click.ClickException("py-spy is not installed: pip install py-spy")
    return found


def spy_argv(pid: int, *, dump: bool, seconds: int, rate: int, output: str) -> list[str]:
    """py-spy's command line: record a flame graph (never pausing the target), or dump stacks."""
    if dump:
        return [py_spy(), "dump", "--pid", str(pid)]
    return [
        py_spy(), "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
        "--rate", str(rate), "--duration", str(seconds), "--format", "flamegraph",
        "--output", output,
    ]  # fmt: skip


@click.command("profile")
@click.argument("pid", type=int)
@click.option("--dump", is_flag=True, help="Print every thread's stack now instead of recording.")
@click.option("--seconds", default=10, show_default=True, type=click.IntRange(1, 600))
@click.option("--rate", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="Samples per second (py-spy competes for the same cores).")  # fmt: skip
@click.option("--output", default=None, help="SVG file (default: profile-PID.svg).")
def profile(pid: int, dump: bool, seconds: int, rate: int, output: str | None) -> None:
    """Record a flame graph of a live process PID and its children with py-spy (or --dump).

    For when the admin console itself is stuck: it needs nothing from the process, only
    permission to read its memory (see the error it prints without it).
    """
    target = output or f"profile-{pid}.svg"
    argv = spy_argv(pid, dump=dump, seconds=seconds, rate=rate, output=target)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        denied = "ermission" in done.stderr or "ptrace" in done.stderr.lower()
        raise click.ClickException(done.stderr.strip() + ("\n" + PERMISSIONS if denied else ""))
    if not dump:
        click.echo(f"Flame graph of {pid} and its children: {target}")
