"""Server-side browser sessions as Flask's session: the cookie carries only a random token.

The session dictionary (CSRF token, flashed messages, `user_id` once logged in) lives in
the `sessions` table through `services.sessions`. Whenever `user_id` changes (login,
logout) the browser gets a new token and the old row is deleted, so a token planted before
login or copied before logout opens nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, Request, Response, g, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from todoscale.extensions import db
from todoscale.models import User, utcnow
from todoscale.services import sessions

_serializer = TaggedJSONSerializer()

# Browsers take a cookie named `__Host-...` only when it is Secure, for the path `/` and
# without a Domain: then no plain-HTTP page and no other host (a subdomain) can set or
# replace it. Every Secure session cookie (production's) is named so.
HOST_PREFIX = "__Host-"

# Paths that never use the browser session: the API authenticates with bearer tokens, and
# static files need no database round trip. (`/metrics` does: an admin's session may read it.)
_SESSIONLESS = ("/api/", "/static/", "/healthz", "/readyz")


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """The session of one request, with what the server knew when it was opened."""

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        user: User | None = None,
        last_seen_at: datetime | None = None,
        stale_cookie: bool = False,
    ) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.token = token
        self.user = user
        self.opened_user_id = user.id if user is not None else None
        self.last_seen_at = last_seen_at
        self.stale_cookie = stale_cookie
        self.modified = False


class DatabaseSessionInterface(SessionInterface):
    """Opens and saves `ServerSession`s through the sessions service."""

    def get_cookie_name(self, app: Flask) -> str:
        """The configured name, with the `__Host-` prefix whenever the cookie is Secure."""
        name = super().get_cookie_name(app)
        return HOST_PREFIX + name if self.get_cookie_secure(app) else name

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        """The session the cookie names, an empty one, or None (a null session) for the API."""
        if request.path.startswith(_SESSIONLESS):
            return None
        token = request.cookies.get(self.get_cookie_name(app))
        record = sessions.find_session(token) if token else None
        if record is None:
            return ServerSession(stale_cookie=token is not None)
        return ServerSession(
            _serializer.loads(record.data),
            token=token,
            user=record.user,
            last_seen_at=record.last_seen_at,
        )

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write what changed; issue a new token when the identity changed."""
        assert isinstance(session, ServerSession)
        if session.accessed:
            response.vary.add("Cookie")
        if session.token is None and not session and not session.stale_cookie:
            return  # an anonymous visit that stored nothing: no row, no cookie, no query
        # Whatever a failed use case left unflushed in the database session must not ride
        # along on the commits below.
        db.session.rollback()
        user_id = session.get("user_id")
        if session.token is not None and user_id == session.opened_user_id:
            self._keep(app, session, response)
        elif not session and session.token is None:
            if session.stale_cookie:
                self._drop_cookie(app, response)
        elif not session:
            assert session.token is not None
            sessions.end_session(session.token)
            self._drop_cookie(app, response)
        else:
            token, record = sessions.start_session(
                user_id, _serializer.dumps(dict(session)), replacing=session.token
            )
            response.set_cookie(
                self.get_cookie_name(app),
                token,
                expires=sessions.expires_at(record),
                domain=self.get_cookie_domain(app),
                path=self.get_cookie_path(app),
                secure=self.get_cookie_secure(app),
                httponly=self.get_cookie_httponly(app),
                samesite=self.get_cookie_samesite(app),
            )

    def _keep(self, app: Flask, session: ServerSession, response: Response) -> None:
        assert session.token is not None and session.last_seen_at is not None
        due = utcnow() - session.last_seen_at >= sessions.TOUCH_EVERY
        if not session.modified and not due:
            return
        data = _serializer.dumps(dict(session)) if session.modified else None
        if not sessions.save_session(session.token, data):
            self._drop_cookie(app, response)  # ended by another request meanwhile

    def _drop_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(
            self.get_cookie_name(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=self.get_cookie_httponly(app),
            samesite=self.get_cookie_samesite(app),
        )


def load_user() -> None:
    """Before each request: `g.user` is the logged-in user of the browser, or None."""
    g.user = getattr(session, "user", None)


def log_in(user: User) -> None:
    """Make `user` this browser's user; the session gets a new token when the response goes."""
    session.clear()  # also drops the anonymous CSRF token: a new one is made for the new session
    session["user_id"] = user.id


def log_out() -> None:
    """End this browser's session; the response deletes the row and the cookie."""
    session.clear()
