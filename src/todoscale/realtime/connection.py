"""Who may connect: a bearer token in the Socket.IO `auth`, or the web session's cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request, session
from flask_socketio import join_room
from socketio.exceptions import ConnectionRefusedError

from todoscale.models import User
from todoscale.realtime.events import user_room
from todoscale.realtime.monitor import EXTENSION as MONITOR_EXTENSION
from todoscale.realtime.recheck import RECHECK_EXTENSION
from todoscale.services.accounts import user_for_token

# app.extensions key of the serving process's RelayConsumer (embedded set-up only).
RELAY_EXTENSION = "todoscale.realtime.relay"


def on_connect(auth: Any = None) -> bool:
    """Admit a client with a live token or web session into its user's room; refuse others."""
    token_user = _token_user(auth)
    user = token_user or _session_user()
    if user is None:
        raise ConnectionRefusedError(
            "Authentication required: pass auth={'token': '<bearer token>'} or log in."
        )
    join_room(user_room(user.id))
    monitor = current_app.extensions.get(MONITOR_EXTENSION)
    if monitor is not None:
        transport = request.environ.get("HTTP_UPGRADE", "polling") or "polling"
        monitor.connected(request.sid, user.username, transport)  # type: ignore[attr-defined]
    relay = current_app.extensions.get(RELAY_EXTENSION)
    if relay is not None:
        relay.start_once()
    recheck = current_app.extensions.get(RECHECK_EXTENSION)
    if recheck is not None:
        # What it connected with, so that revoking or logging out closes it later.
        recheck.remember(
            request.sid,  # type: ignore[attr-defined]
            token=auth["token"] if token_user is not None else None,
            session_token=None if token_user is not None else getattr(session, "token", None),
        )
        recheck.start_once()
    return True


def on_disconnect(*_: Any) -> None:
    """A client left: the console and the connection gauge forget it."""
    monitor = current_app.extensions.get(MONITOR_EXTENSION)
    if monitor is not None:
        monitor.disconnected(request.sid)  # type: ignore[attr-defined]


def _token_user(auth: Any) -> User | None:
    token = auth.get("token") if isinstance(auth, dict) else None
    return user_for_token(token) if isinstance(token, str) else None


def _session_user() -> User | None:
    # The web session as auth.sessions opened it from the connection request's cookie:
    # `user` is set only for a live, logged-in session (ended or expired ones open empty).
    user = getattr(session, "user", None)
    return user if isinstance(user, User) else None


def origin_check(
    extra: str | None, *, any_port: bool = False
) -> Callable[[str | None, dict[str, Any]], bool] | None:
    """Engine.IO's CORS check: the page's own origin, plus `extra` (comma-separated) if given.

    `any_port`: also pages of the same host on another port, for a Socket.IO service that
    has a port of its own beside the HTTP server (`todoscale run`). That widens nothing a
    cookie did not already allow: cookies belong to a host, whatever its port.
    """
    if not extra and not any_port:
        return None  # Engine.IO's default: the same origin only
    allowed = {origin.strip().rstrip("/") for origin in (extra or "").split(",") if origin.strip()}

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True  # not a browser: nothing for CORS to protect
        host = environ.get("HTTP_HOST", "")
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{host}"
        if origin == own or origin in allowed:
            return True
        return any_port and urlsplit(origin).hostname == urlsplit(own).hostname

    return check
