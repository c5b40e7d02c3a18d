"""Engine set-up per database: SQLite pragmas, PostgreSQL pool and timeouts."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from todoscale.extensions import db

logger = logging.getLogger(__name__)


def database_url(config: dict[str, Any], instance_path: str) -> str:
    """The configured URL, or the embedded SQLite file in the instance folder."""
    url: str | None = config.get("SQLALCHEMY_DATABASE_URI")
    return url or f"sqlite:///{Path(instance_path) / 'todoscale.db'}"


def engine_options(config: dict[str, Any]) -> dict[str, Any]:
    """Pool and driver options for the configured database."""
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        # No pre-ping: a file cannot go away like a server; the ping would cost every request.
        return {"connect_args": {"timeout": 10}}
    options: dict[str, Any] = {
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_MAX_OVERFLOW"],
        "pool_timeout": config["DB_POOL_TIMEOUT"],
        "pool_pre_ping": True,
        "pool_recycle": 1800,
    }
    if url.get_backend_name() == "postgresql" and config["DB_STATEMENT_TIMEOUT_MS"]:
        options["connect_args"] = {
            "options": f"-c statement_timeout={config['DB_STATEMENT_TIMEOUT_MS']}"
        }
    return options


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite;
    # NORMAL sync is durable across process crashes in WAL mode and much faster than FULL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def init_app(app: Flask) -> None:
    """Bind the database and attach per-engine connection set-up."""
    db.init_app(app)
    # After Flask-SQLAlchemy's own teardown, so it runs before it (Flask runs them reversed).
    app.teardown_appcontext(_close_session)
    with app.app_context():
        engine: Engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)


def _close_session(_exc: BaseException | None) -> None:
    """Close the request's session; when the database went away under it, drop it.

    Closing rolls back, and on a connection the server terminated (PostgreSQL stopped) the
    ROLLBACK raises: out of Flask's teardown that was a 500 in place of the answer the view
    had made (a 503, or a 2xx whose write had committed). Such a session's connections are
    invalidated instead: never sent anything again, never back in the pool.
    """
    try:
        db.session.remove()
    except DBAPIError as exc:
        logger.warning("the database went away as a request ended: %s", str(exc.orig)[:200])
        with contextlib.suppress(DBAPIError):
            db.session().invalidate()
        db.session.registry.clear()
