"""The Socket.IO service is one process (gunicorn's gevent worker without its master,
deploy/lone_worker.py) that stops gracefully on TERM, open WebSockets and all."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Account
from tests.realtime.conftest import LiveClient, SocketServer

Connect = Callable[[str, str], LiveClient]


def _children(pid: int) -> list[str]:
    return [
        child
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def test_the_service_is_one_process_that_stops_on_term_with_clients_connected(
    server: SocketServer, live_clients: Connect, alice: Account
) -> None:
    client = live_clients(server.url, alice.token)
    proc = server.proc
    assert proc is not None and client.sio.connected

    # No master: the process serving the WebSocket is the one that was started.
    assert _children(proc.pid) == []

    os.kill(proc.pid, signal.SIGTERM)  # to it alone, as supervisord with stopasgroup
    started = time.monotonic()
    status = proc.wait(timeout=15)
    took = time.monotonic() - started

    assert status == 0
    # The open WebSocket held it no longer than the graceful timeout (2 s here) and a margin.
    assert took < 2 + 5
    deadline = time.monotonic() + 5
    while client.sio.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.sio.connected
