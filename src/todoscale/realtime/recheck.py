"""Closing connections whose credentials died after they connected.

A token or web session is checked when a client connects; revoking the token, logging out
or the session expiring must end what that connection receives too. Each serving process
re-checks its own connections every `SOCKETIO_RECHECK_SECONDS`: tokens through the cached
lookup (every revocation invalidates it), web sessions with one query per 500. Each process
only ever disconnects its own clients, so this holds across processes without a message.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from flask import Flask

from todoscale.realtime.monitor import EXTENSION as MONITOR_EXTENSION
from todoscale.services.accounts import user_for_token
from todoscale.services.sessions import live_session_tokens

if TYPE_CHECKING:
    import socketio

logger = logging.getLogger(__name__)

# app.extensions key of the serving process's Recheck.
RECHECK_EXTENSION = "todoscale.realtime.recheck"
NAMESPACE = "/"


class Recheck:
    """A background task of the serving process, started with its first client."""

    def __init__(self, app: Flask, server: socketio.Server) -> None:
        self._app = app
        self._server = server
        self._lock = threading.Lock()
        self._started = False
        self._stopping = threading.Event()
        self._ended = threading.Event()
        # sid -> (bearer token, web session token): what each connection logged in with.
        self.credentials: dict[str, tuple[str | None, str | None]] = {}

    def remember(self, sid: str, *, token: str | None, session_token: str | None) -> None:
        """Keep what a connection authenticated with, for the re-checks."""
        self.credentials[sid] = (token, session_token)

    def start_once(self) -> None:
        """Start re-checking, unless already started (or stopped)."""
        with self._lock:
            if not self._started and not self._stopping.is_set():
                self._started = True
                self._server.start_background_task(self._run)

    def stop(self, timeout: float) -> bool:
        """End the task (a serving process runs it for life; an app that stops serving, as a
        test's does, must end it); whether it had ended within `timeout` seconds."""
        with self._lock:
            self._stopping.set()
            if not self._started:
                return True
        return self._ended.wait(timeout)

    def _run(self) -> None:
        try:
            self._recheck_until_stopped(float(self._app.config["SOCKETIO_RECHECK_SECONDS"]))
        finally:
            self._ended.set()

    def _recheck_until_stopped(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            try:
                with self._app.app_context():
                    closed = close_dead_connections(self._server, self.credentials)
                if closed:
                    logger.info("closed %d Socket.IO connections whose login ended", closed)
                monitor = self._app.extensions.get(MONITOR_EXTENSION)
                if monitor is not None:
                    monitor.write()
            except Exception:  # process boundary: the task must outlive a bad moment
                logger.exception("re-checking Socket.IO connections failed")


def close_dead_connections(
    server: socketio.Server, credentials: dict[str, tuple[str | None, str | None]]
) -> int:
    """Disconnect this process's clients whose token or web session no longer works.

    `credentials` is pruned of connections that have gone meanwhile.
    """
    connected = {sid for sid, _eio_sid in server.manager.get_participants(NAMESPACE, None)}
    for sid in list(credentials):
        if sid not in connected:
            credentials.pop(sid, None)
    current = {sid: credentials[sid] for sid in connected if sid in credentials}
    sessions = {session for _token, session in current.values() if session}
    live = live_session_tokens(sessions) if sessions else set()
    dead = [
        sid
        for sid, (token, session) in current.items()
        if (token and user_for_token(token) is None) or (session and session not in live)
    ]
    for sid in dead:
        credentials.pop(sid, None)
        server.disconnect(sid, NAMESPACE)
    return len(dead)
