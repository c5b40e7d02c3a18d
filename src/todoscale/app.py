"""The application factory: a table of contents of the app's parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from todoscale import admin, auth, errors, web
from todoscale.api import routes as api
from todoscale.core import configured_app, init_jobs
from todoscale.extensions import db
from todoscale.ops import (
    compression,
    exposition,
    health,
    http,
    limits,
    metrics,
    profiling,
    ready,
    static,
    tracing,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(overrides: dict[str, Any] | None = None, *, migrations: bool = True) -> Flask:
    """Build the app: configuration, then extensions, blueprints and error handlers.

    A server's app (`migrations=False`: `todoscale.wsgi`; the worker's is `core`'s) goes without
    Flask-Migrate, which imports Alembic, Mako and Pygments: 11.6 MiB in every process
    (measured), for commands a server never runs (`todoscale serve` migrates before it
    starts the server)."""
    app = configured_app(overrides)
    if migrations:
        from flask_migrate import Migrate  # here: see the docstring

        Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    metrics.init_app(app)  # first: a replay is counted without it (ready)
    ready.init_app(app)  # before http: its proxy handling must wrap the ready responses
    http.init_app(app)
    tracing.init_app(app)  # only with TODOSCALE_OTEL_ENDPOINT
    static.init_app(app)
    compression.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    init_jobs(app)  # the mailer, the audit log, Celery, live updates

    profiling.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(exposition.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(web.bp)
    limits.init_app(app)  # after the blueprints: its limits name them
    return app
