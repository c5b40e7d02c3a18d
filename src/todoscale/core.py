"""What every app of ours has, web or worker: configuration, the database, the cache, jobs
and live updates; and the Celery worker's app, which has nothing else.

The worker runs jobs (imports, exports), reminders and housekeeping and sends their live
updates; it serves no page and no API call. Its app (`create_worker_app`) goes without the
web's blueprints and request-only extensions (forms and CSRF, compression, rate limits,
error pages, the admin console, API docs), and without importing their modules: the worker
is a process of its own under `todoscale run`, sharing no pages with the web's, so every
module it imports is memory of its own (README, "Memory").
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from todoscale import cache, mail, realtime, tasks
from todoscale.config import broker_url, ensure_secret_key, instance_folder, load_config
from todoscale.instance import keep_private, prepare_instance
from todoscale.models import crypto, engine
from todoscale.ops import logs, metrics, tracing
from todoscale.ops.json import OrjsonProvider

# accounts, lists and todos declare which cache scopes each table's rows belong to
# (`cache.track`): imported by every app, so a process bumps the scopes of the rows it writes
# whatever else it imports (the worker imported no services.todos: an import's rows bumped no
# list scope and the web kept serving its cached empty page; tests/test_core.py).
from todoscale.services import accounts, audit, lists, todos  # noqa: F401


def configured_app(overrides: dict[str, Any] | None = None) -> Flask:
    """A Flask app with its configuration, logging, database engine, note keys and cache."""
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
    return app


def init_jobs(app: Flask) -> None:
    """The mailer, the audit log's receivers, Celery and live updates (serve, emit or off)."""
    app.extensions["mailer"] = mail.from_config(app.config)  # None without SMTP_URL
    audit.connect_receivers()
    tasks.init_app(app)
    realtime.init_app(app)


def create_worker_app(overrides: dict[str, Any] | None = None) -> Flask:
    """The Celery worker's app: what its tasks use, no web blueprint and no request-only
    extension. With a mailer (TODOSCALE_SMTP_URL), the reminder emails' translations and the
    web pages' routes, which their links name (built, never served)."""
    app = configured_app(overrides)
    metrics.init_app(app)  # the job metrics, and the control thread a worker starts
    tracing.init_app(app)  # only with TODOSCALE_OTEL_ENDPOINT: the tasks' spans
    init_jobs(app)
    if app.extensions["mailer"] is not None:
        from todoscale import web  # here: only a worker that sends email links to its pages
        from todoscale.web_extensions import babel

        babel.init_app(app)  # the email's language is forced per reader (tasks.emails)
        app.register_blueprint(web.bp)
    return app
