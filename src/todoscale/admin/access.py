"""Who may use the console: a logged-in admin; everyone else gets 404 (no existence leak)."""

from __future__ import annotations

from pathlib import Path

from flask import abort, current_app, g, request

from todoscale.models import User
from todoscale.ops.metrics import of


def require_admin() -> None:
    """Before every admin request: 404 unless the browser's user is an admin."""
    user = g.get("user")
    if user is None or not user.is_admin:
        abort(404)


def admin() -> User:
    """The admin making this request."""
    user: User = g.user
    return user


def root() -> Path:
    """The host's metrics folder (stats, profiles, snapshots, live files)."""
    return of(current_app).root


def client() -> str:
    """The client's address, for the security log."""
    return request.remote_addr or "unknown"
