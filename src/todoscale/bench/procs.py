"""Starting and stopping the servers a benchmark measures: own process group, stopped by id."""

from __future__ import annotations

import contextlib
import os
import random
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from todoscale.deploy.probes import wait_answer

# The scripts of the Python running the bench (a venv's bin, or the installation's).
BIN = Path(sys.executable).parent
# The ports the bench's servers listen on (127.0.0.1 only), first free ones taken in order.
PORTS = range(18000, 19000)


def raise_fd_limit() -> None:
    """Let this process and its children hold the 1000-connection runs' sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def clean_environment() -> dict[str, str]:
    """This process's environment without any TODOSCALE_* setting: the bench's servers get
    only what the bench gives them, so none can reach the user's database, Redis or folder."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TODOSCALE_")}


class Ports:
    """Hands out free 127.0.0.1 ports (or runs of consecutive ones) from PORTS, never twice.

    Each bench starts at a random place in the range: two benches at once (the test suite's
    two engine passes each run the quick ladder) taking the same ports in the same order
    would race from the check to the bind."""

    def __init__(self, ports: range = PORTS) -> None:
        self._next = random.randrange(ports.start, ports.start + len(ports) // 2)
        self._stop = ports.stop

    @staticmethod
    def _free(port: int) -> bool:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    def take(self, count: int = 1) -> int:
        """The first of `count` consecutive free ports."""
        while self._next + count <= self._stop:
            start = self._next
            self._next += count
            if all(self._free(p) for p in range(start, start + count)):
                return start
        raise RuntimeError(f"no {count} free consecutive ports left below {self._stop}")


class Server:
    """A server process group started from a command; `stop()` ends the whole group."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log: Path,
        *,
        cwd: Path | None = None,
        clean: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        base = clean_environment() if clean else dict(os.environ)
        self.proc = subprocess.Popen(
            argv,
            env={**base, **env},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )

    @property
    def pids(self) -> set[int]:
        """The process group's id (the leader's pid)."""
        return {self.proc.pid}

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        """Poll `url` until it answers 200, or raise with the server's log."""
        if wait_answer(url, self.proc, timeout):
            return
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of every live process in the server's group."""
        return group_cpu_seconds({self.proc.pid})

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL what is left after 10 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        # Workers that outlived their leader (none should) go too.
        for pid in group_members(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log_file.close()


def processes() -> Iterator[tuple[int, list[str]]]:
    """Every process's id and the fields of its /proc stat after the command name (state,
    parent, process group, session, ..., user and system time at 11 and 12)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        yield int(entry.name), fields


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid`."""
    return [pid for pid, fields in processes() if int(fields[2]) == pgid and fields[0] != "Z"]


def group_cpu_seconds(groups: set[int]) -> float:
    """User + system CPU seconds of the live processes whose process group is in `groups`."""
    ticks = sum(
        int(fields[11]) + int(fields[12]) for _, fields in processes() if int(fields[2]) in groups
    )
    return ticks / os.sysconf("SC_CLK_TCK")


def group_pss(groups: set[int]) -> tuple[int, int]:
    """The proportional set size in bytes of the live processes whose process group is in
    `groups` (a page shared by n processes counts 1/n of it to each, so the sum is what they
    cost together: a forked worker's shared pages are not counted twice), and how many they are."""
    total = count = 0
    for pid, fields in processes():
        if int(fields[2]) not in groups or fields[0] == "Z":
            continue
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue  # it ended meanwhile, or it is not ours to read
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                count += 1
                break
    return total, count


def run(
    argv: list[str], env: Mapping[str, str], *, clean: bool = False, timeout: float = 600
) -> str:
    """Run a command to completion and return its output (raising on failure)."""
    base = clean_environment() if clean else dict(os.environ)
    done = subprocess.run(
        argv, env={**base, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def fresh_redis(url: str) -> str | None:
    """`url` when that Redis answers (its database emptied first: the bench's own), else None."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.flushdb()
        client.close()
    except redis.RedisError:
        return None
    return url


def fresh_postgres(url: str) -> str | None:
    """Create the database of `url` afresh on its PostgreSQL; `url`, or None when none answers."""
    target = make_url(url)
    admin = create_engine(
        target.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    except OperationalError:
        return None
    finally:
        admin.dispose()
    return url
