"""The application factory: a table of contents of the app's parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from todoscale import admin, api, auth, cache, errors, mail, realtime, tasks, web
from todoscale.config import broker_url, ensure_secret_key, instance_folder, load_config
from todoscale.extensions import db
from todoscale.instance import keep_private, prepare_instance
from todoscale.models import crypto, engine
from todoscale.ops import (
    compression,
    exposition,
    health,
    http,
    limits,
    logs,
    metrics,
    profiling,
    ready,
    static,
    tracing,
)
from todoscale.ops.json import OrjsonProvider
from todoscale.services import audit

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(overrides: dict[str, Any] | None = None, *, migrations: bool = True) -> Flask:
    """Build the app: configuration, then extensions, blueprints and error handlers.

    A server's app (`migrations=False`: `todoscale.wsgi`, `todoscale.worker`) goes without
    Flask-Migrate, which imports Alembic, Mako and Pygments: 11.6 MiB in every process
    (measured), for commands a server never runs (`todoscale serve` migrates before it
    starts the server)."""
    values = load_config(env_name=(overrides or {}).get("ENV_NAME"))
    values.update(overrides or {})
    instance_path = instance_folder(values)
    prepare_instance(instance_path)  # 0700: its keys, database and queue are the owner's

    app = Flask("todoscale", instance_path=instance_path)
    app.json = OrjsonProvider(app)
    app.config.update(values)
    app.config["SECRET_KEY"] = ensure_secret_key(values, instance_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = engine.database_url(values, instance_path)
    keep_private(app.config["SQLALCHEMY_DATABASE_URI"], broker_url(values, instance_path))
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine.engine_options(app.config)
    logs.init_app(app)

    engine.init_app(app)
    crypto.init_app(app)
    cache.init_app(app)
    if migrations:
        from flask_migrate import Migrate  # here: see the docstring

        Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    ready.init_app(app)  # before http: its proxy handling must wrap the ready responses
    http.init_app(app)
    metrics.init_app(app)  # outside the proxy fix: it wraps the whole request
    tracing.init_app(app)  # only with TODOSCALE_OTEL_ENDPOINT
    static.init_app(app)
    compression.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    app.extensions["mailer"] = mail.from_config(app.config)  # None without SMTP_URL
    audit.connect_receivers()
    tasks.init_app(app)
    realtime.init_app(app)

    profiling.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(exposition.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(web.bp)
    limits.init_app(app)  # after the blueprints: its limits name them
    return app
