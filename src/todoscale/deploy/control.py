"""A running supervisord, through its XML-RPC interface on the unix socket of its folder:
its pid, each program's state and pid, stopping it with everything it runs.

Every program runs in a process group of its own, led by the pid supervisord reports:
what it forked later (a server's workers) is stopped and, if need be, killed with it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport, UnixStreamHTTPConnection  # type: ignore[import-untyped]

from todoscale.deploy.supervisord import socket_path

# What a call meets when no supervisord answers on the socket (none there, a dead one's
# socket file, one too slow), or one that is shutting down (a fault: it refuses calls).
UNREACHABLE = (OSError, http.client.HTTPException, xmlrpc.client.Error)


class _Connection(UnixStreamHTTPConnection):
    """supervisor's unix-socket connection, with a timeout (its own waits for ever)."""

    def connect(self) -> None:
        """Connect to the socket within the connection's timeout."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socketfile)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Transport(SupervisorTransport):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(serverurl=f"unix://{path}")

        def connection() -> _Connection:
            conn = _Connection("localhost", timeout=timeout)
            conn.socketfile = str(path)
            return conn

        self._get_connection = connection


def server(folder: Path, timeout: float = 10.0) -> Any:
    """An XML-RPC proxy of the supervisord of `folder` (`.supervisor.getPID()`, ...), to use
    in a `with` block (which closes its connection).

    Typed Any: its methods are supervisord's (supervisor.rpcinterface), known at run time.
    """
    # The URL's host is not used: the transport connects to the socket.
    transport = _Transport(socket_path(folder), timeout)
    return xmlrpc.client.ServerProxy("http://localhost", transport=transport)


def supervisord_pid(folder: Path) -> int | None:
    """The pid of the supervisord of `folder` if it answers (and is not shutting down)."""
    try:
        with server(folder) as rpc:
            return int(rpc.supervisor.getPID())
    except UNREACHABLE:
        return None


def listening(folder: Path) -> bool:
    """Whether a supervisord listens on the folder's socket, shutting down or not."""
    try:
        with server(folder) as rpc:
            rpc.supervisor.getPID()
    except xmlrpc.client.Fault:
        return True
    except UNREACHABLE:
        return False
    return True


def programs(folder: Path) -> list[dict[str, Any]]:
    """supervisord's record of each program (name, group, statename, pid, description)."""
    with server(folder) as rpc:
        return list(rpc.supervisor.getAllProcessInfo())


def running_pids(folder: Path) -> dict[str, int]:
    """Each running program's pid (it leads the program's process group)."""
    infos = programs(folder)
    return {info["name"]: info["pid"] for info in infos if info["statename"] == "RUNNING"}


def status_lines(infos: list[dict[str, Any]]) -> str:
    """The programs' states as `supervisorctl status` prints them."""
    names = [info["name"] if info["group"] == info["name"] else f"{info['group']}:{info['name']}"
             for info in infos]  # fmt: skip
    width = max([30, *map(len, names)]) + 3
    return "\n".join(
        f"{name:<{width}}{info['statename']:<10}{info['description']}".rstrip()
        for name, info in zip(names, infos, strict=True)
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_all(rpc: Any) -> tuple[int, list[int]]:
    """Signal every program to stop and shut supervisord down; its pid and the pids of
    its programs (each leads its process group) before and after the signal."""
    calls = [
        ("getAllProcessInfo", []),
        # Every program at once (supervisord's own shutdown stops one group after another).
        ("stopAllProcesses", [False]),
        # Together, so that no program starts in between: each program that has a process
        # now (starting, or stopping), and the shutdown, after which supervisord starts none.
        ("getPID", []),
        ("getAllProcessInfo", []),
        ("shutdown", []),
    ]
    results = rpc.system.multicall(
        [{"methodName": f"supervisor.{name}", "params": params} for name, params in calls]
    )
    # supervisord's multicall gives each result itself (not in a list), a fault as a struct.
    for result in results:
        if isinstance(result, dict) and "faultCode" in result:
            raise xmlrpc.client.Fault(result["faultCode"], result["faultString"])
    before, _, pid, after, _ = results
    groups = [info["pid"] for info in [*before, *after] if info["pid"]]
    return int(pid), list(dict.fromkeys(groups))


def stop(folder: Path, timeout: float = 60.0) -> list[int]:
    """Stop every program and supervisord; return their pids (supervisord's first).

    Every program that has a process counts, still starting or not. Whatever is left after
    `timeout` is killed by id: supervisord first (it would restart the others), then each
    program's whole process group.
    """
    deadline = time.monotonic() + timeout
    try:
        with server(folder) as rpc:  # asking is not stopping: it has its own time to answer
            pid, groups = _stop_all(rpc)
    except xmlrpc.client.Fault:  # shutting down already (another `down`, a signal)
        while time.monotonic() < deadline and listening(folder):
            time.sleep(0.2)
        return []
    except UNREACHABLE:
        return []
    while time.monotonic() < deadline and (listening(folder) or any(map(_group_alive, groups))):
        time.sleep(0.2)
    if listening(folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        left = [pgid for pgid in groups if _group_alive(pgid)]
        if not left:
            break
        for pgid in left:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.1)
    return [pid, *groups]
