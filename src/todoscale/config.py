"""Configuration: one class per environment, every value overridable by a `TODOSCALE_*` variable.

`SETTINGS` is the single table of variables; the README's configuration table mirrors it
(a test keeps the two in step).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false), got {value!r}")


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class Setting:
    """One `TODOSCALE_*` variable: the config key it sets, how to parse it, what it means."""

    env: str
    key: str
    parse: Callable[[str], Any]
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "TODOSCALE_ENV",
        "ENV_NAME",
        str,
        "development",
        "`development` (embedded defaults), `production` or `testing`.",
    ),
    Setting(
        "TODOSCALE_SECRET_KEY",
        "SECRET_KEY",
        str,
        "generated into `instance/secret_key`",
        "Signs sessions. Required in production.",
    ),
    Setting(
        "TODOSCALE_DATABASE_URL",
        "SQLALCHEMY_DATABASE_URI",
        str,
        "`sqlite:///instance/todoscale.db`",
        "SQLAlchemy URL; `postgresql+psycopg://user@host/db` for PostgreSQL.",
    ),
    Setting(
        "TODOSCALE_INSTANCE_PATH",
        "INSTANCE_PATH",
        str,
        "`./instance`",
        "Folder for the SQLite file, the generated secret key and other local state.",
    ),
    Setting(
        "TODOSCALE_DB_POOL_SIZE",
        "DB_POOL_SIZE",
        int,
        "5",
        "Connections kept open per process (PostgreSQL).",
    ),
    Setting(
        "TODOSCALE_DB_MAX_OVERFLOW",
        "DB_MAX_OVERFLOW",
        int,
        "10",
        "Extra connections a process may open under load (PostgreSQL).",
    ),
    Setting(
        "TODOSCALE_DB_POOL_TIMEOUT",
        "DB_POOL_TIMEOUT",
        int,
        "10",
        "Seconds to wait for a pooled connection before failing.",
    ),
    Setting(
        "TODOSCALE_DB_STATEMENT_TIMEOUT_MS",
        "DB_STATEMENT_TIMEOUT_MS",
        int,
        "5000",
        "PostgreSQL statement timeout in milliseconds (0 turns it off).",
    ),
    Setting(
        "TODOSCALE_REDIS_URL",
        "REDIS_URL",
        str,
        "unset (embedded: no Redis)",
        "Redis for the shared cache, rate limits, the job queue and live updates across "
        "processes, e.g. `redis://127.0.0.1:6379/0`.",
    ),
    Setting(
        "TODOSCALE_PUBLIC_URL",
        "PUBLIC_URL",
        str,
        "`http://localhost:${PORT:-8000}`",
        "The service's address as users reach it: every absolute URL (`Location`, the `url` "
        "of resources, events, emails) is built from it, never from the request's `Host`. "
        "Unset outside production, the request's host is used.",
    ),
    Setting(
        "TODOSCALE_TRUSTED_HOSTS",
        "TRUSTED_HOSTS",
        _list,
        "unset (any host)",
        "Host names the app answers, comma-separated (`.example.com` for its subdomains); a "
        "request for another gets 400. Set it, or `TODOSCALE_PUBLIC_URL`, in production.",
    ),
    Setting(
        "TODOSCALE_BROKER_URL",
        "BROKER_URL",
        str,
        "`TODOSCALE_REDIS_URL`, else `sqla+sqlite:///instance/queue.sqlite`",
        "Celery broker: RabbitMQ (`amqp://...`) or Redis; the embedded default is a "
        "persistent queue in a local SQLite file.",
    ),
    Setting(
        "TODOSCALE_WORKER_CONCURRENCY",
        "WORKER_CONCURRENCY",
        int,
        "2",
        "Jobs one Celery worker runs at a time.",
    ),
    Setting(
        "TODOSCALE_JOB_LEASE_SECONDS",
        "JOB_LEASE_SECONDS",
        int,
        "60",
        "A running job whose worker has not reported for this long is taken over by another "
        "(a worker killed mid-job).",
    ),
    Setting(
        "TODOSCALE_JOB_SWEEP_SECONDS",
        "JOB_SWEEP_SECONDS",
        float,
        "15",
        "How often beat re-sends jobs that are queued too long or whose lease expired.",
    ),
    Setting(
        "TODOSCALE_REMINDER_WINDOW_MINUTES",
        "REMINDER_WINDOW_MINUTES",
        int,
        "15",
        "Todos due within this many minutes get a reminder to every member of their list.",
    ),
    Setting(
        "TODOSCALE_REMINDER_INTERVAL_SECONDS",
        "REMINDER_INTERVAL_SECONDS",
        float,
        "60",
        "How often beat looks for todos coming due.",
    ),
    Setting(
        "TODOSCALE_PURGE_INTERVAL_SECONDS",
        "PURGE_INTERVAL_SECONDS",
        float,
        "3600",
        "How often beat deletes what has outlived its retention: finished jobs, expired "
        "tokens and sessions, old notifications.",
    ),
    Setting(
        "TODOSCALE_JOB_RETENTION_DAYS",
        "JOB_RETENTION_DAYS",
        float,
        "7",
        "A finished job (succeeded or failed), with its export file, is deleted this many "
        "days after it finished.",
    ),
    Setting(
        "TODOSCALE_NOTIFICATION_RETENTION_DAYS",
        "NOTIFICATION_RETENTION_DAYS",
        float,
        "90",
        "A notification, read or not, is deleted this many days after it was made.",
    ),
    Setting(
        "TODOSCALE_SMTP_URL",
        "SMTP_URL",
        str,
        "unset (no email)",
        "Send reminders by email too: `smtp://user:password@host:587` (STARTTLS) or "
        "`smtps://...` (TLS); a password is only ever sent over TLS.",
    ),
    Setting(
        "TODOSCALE_MAIL_FROM",
        "MAIL_FROM",
        str,
        "`todoscale@localhost`",
        "Sender address of reminder emails.",
    ),
    Setting(
        "TODOSCALE_SOCKETIO_MESSAGE_QUEUE",
        "SOCKETIO_MESSAGE_QUEUE",
        str,
        "`TODOSCALE_REDIS_URL`",
        "Where Socket.IO processes exchange events; unset without Redis: one process serves "
        "Socket.IO and workers hand it their events through the local queue.",
    ),
    Setting(
        "TODOSCALE_REALTIME",
        "REALTIME",
        str,
        "`emit` (`serve` under `todoscale run` and the Socket.IO service)",
        "`serve`: this process serves `/socket.io/`; `emit`: it only sends events; `off`: "
        "it sends none (the test suite's default).",
    ),
    Setting(
        "TODOSCALE_SOCKETIO_RECHECK_SECONDS",
        "SOCKETIO_RECHECK_SECONDS",
        float,
        "5",
        "How often a Socket.IO process re-checks its connections' tokens and web sessions "
        "and closes those revoked, logged out or expired since they connected.",
    ),
    Setting(
        "TODOSCALE_SOCKETIO_PORT",
        "SOCKETIO_PORT",
        int,
        "unset (`PORT` + 1 under `todoscale run`)",
        "Port of the Socket.IO service beside the HTTP server on the same host: pages "
        "connect to it on their own host name; unset: `/socket.io/` on the page's own origin.",
    ),
    Setting(
        "TODOSCALE_SOCKETIO_CORS_ORIGINS",
        "SOCKETIO_CORS_ORIGINS",
        str,
        "unset (same origin only)",
        "Extra origins allowed to open Socket.IO connections, comma-separated.",
    ),
    Setting(
        "TODOSCALE_LOCAL_CACHE",
        "LOCAL_CACHE",
        str,
        "auto",
        "In-process cache of token lookups, memberships and first pages: `auto` (on with "
        "SQLite, or with a server database when Redis holds the stamps), `on` or `off`.",
    ),
    Setting(
        "TODOSCALE_LOCAL_CACHE_TTL",
        "LOCAL_CACHE_TTL",
        float,
        "60",
        "Seconds a locally cached value lives at most (changes made through the app "
        "invalidate it at once).",
    ),
    Setting(
        "TODOSCALE_ENCRYPTION_KEYS",
        "ENCRYPTION_KEYS",
        _list,
        "unset (notes stored as they are)",
        "Fernet keys, comma-separated: todo notes are stored encrypted with the first, and "
        "read with any (put a new key first, run `todoscale keys rotate`, then drop the old).",
    ),
    Setting(
        "TODOSCALE_TOKEN_TTL",
        "TOKEN_TTL_SECONDS",
        int,
        "86400",
        "Lifetime of an API token in seconds.",
    ),
    Setting(
        "TODOSCALE_TOKEN_LAST_USED_SECONDS",
        "TOKEN_LAST_USED_SECONDS",
        float,
        "300",
        'How precise a token\'s "last used" time is: each process writes it at most this '
        "often per token, outside the request's transaction.",
    ),
    Setting(
        "TODOSCALE_MAX_JSON_BYTES",
        "MAX_JSON_BYTES",
        int,
        "1048576",
        "Largest JSON request body accepted (413 above).",
    ),
    Setting(
        "TODOSCALE_MAX_UPLOAD_BYTES",
        "MAX_CONTENT_LENGTH",
        int,
        "10485760",
        "Largest request body of any kind (file uploads).",
    ),
    Setting(
        "TODOSCALE_IMPORT_MAX_ROWS",
        "IMPORT_MAX_ROWS",
        int,
        "1000000",
        "Most rows one import takes; a file with more is refused with 422, nothing written.",
    ),
    Setting(
        "TODOSCALE_TRUSTED_PROXIES",
        "TRUSTED_PROXIES",
        int,
        "0",
        "Number of reverse proxies in front of the app whose `X-Forwarded-*` are trusted.",
    ),
    Setting(
        "TODOSCALE_RATE_LIMITS_ENABLED",
        "RATE_LIMITS_ENABLED",
        _bool,
        "1",
        "Rate limits and login throttling (stored in Redis when `TODOSCALE_REDIS_URL` is set, "
        "else in memory, per process).",
    ),
    Setting(
        "TODOSCALE_API_WRITE_LIMIT",
        "API_WRITE_LIMIT",
        str,
        "600 per minute",
        "API writes (POST, PATCH, DELETE) per authenticated user.",
    ),
    Setting(
        "TODOSCALE_IMPORT_LIMIT",
        "IMPORT_LIMIT",
        str,
        "10 per hour",
        "Imports (`POST /api/v1/imports`) per authenticated user, beside the write limit.",
    ),
    Setting(
        "TODOSCALE_ANON_LIMIT",
        "ANON_LIMIT",
        str,
        "30 per minute",
        "Requests per client address to each anonymous route: registration, token issue, "
        "the login and sign-up pages.",
    ),
    Setting(
        "TODOSCALE_LOGIN_FAILURES_PER_ADDRESS",
        "LOGIN_FAILURES_PER_ADDRESS",
        str,
        "10 per 15 minutes",
        "Failed logins to one account from one address before further attempts get 429.",
    ),
    Setting(
        "TODOSCALE_LOGIN_FAILURES_PER_ACCOUNT",
        "LOGIN_FAILURES_PER_ACCOUNT",
        str,
        "100 per hour",
        "Failed logins to one account from any address before it accepts logins only from "
        "addresses it logged in from before.",
    ),
    Setting(
        "TODOSCALE_COMPRESS_MIN_BYTES",
        "COMPRESS_MIN_SIZE",
        int,
        "500",
        "Responses at least this large are compressed (zstd, br or gzip, as the client accepts).",
    ),
    Setting("TODOSCALE_LOG_LEVEL", "LOG_LEVEL", str, "INFO", "Log level of the app's loggers."),
    Setting("TODOSCALE_REQUEST_LOG", "REQUEST_LOG", _bool, "1", "Write one JSON line per request."),
    Setting(
        "TODOSCALE_ARGON2_TIME_COST",
        "ARGON2_TIME_COST",
        int,
        "3",
        "argon2id iterations; raise it and old hashes are upgraded at the next login.",
    ),
    Setting(
        "TODOSCALE_ARGON2_MEMORY_KIB",
        "ARGON2_MEMORY_KIB",
        int,
        "65536",
        "argon2id memory per hash in KiB.",
    ),
    Setting(
        "TODOSCALE_SESSION_IDLE_MINUTES",
        "SESSION_IDLE_MINUTES",
        int,
        "120",
        "A browser session unused this many minutes ends (the user logs in again).",
    ),
    Setting(
        "TODOSCALE_SESSION_MAX_DAYS",
        "SESSION_MAX_DAYS",
        int,
        "14",
        "A browser session ends this many days after login, however active.",
    ),
    Setting(
        "TODOSCALE_SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_SECURE",
        _bool,
        "1 in production, else 0",
        "Send the session cookie over HTTPS only, named `__Host-todoscale_session` (this host "
        "only).",
    ),
    Setting(
        "TODOSCALE_BIND",
        "BIND",
        str,
        "`127.0.0.1:${PORT:-8000}`",
        "Address `todoscale serve` listens on.",
    ),
    Setting(
        "TODOSCALE_WORKERS",
        "WORKERS",
        int,
        "`2 * cores + 1` (gunicorn), cores (granian)",
        "Worker processes of `todoscale serve`.",
    ),
    Setting(
        "TODOSCALE_WORKER_CLASS",
        "WORKER_CLASS",
        str,
        "sync",
        "gunicorn worker class for `todoscale serve`: `sync`, `gthread` or `gevent`.",
    ),
    Setting(
        "TODOSCALE_THREADS",
        "THREADS",
        int,
        "1",
        "Threads per worker with the `gthread` worker class.",
    ),
    Setting(
        "TODOSCALE_SERVER",
        "SERVER",
        str,
        "granian",
        "HTTP server of `todoscale serve`: `granian` (WSGI) or `gunicorn` (see Deployment).",
    ),
    Setting(
        "TODOSCALE_BLOCKING_THREADS",
        "BLOCKING_THREADS",
        int,
        "4",
        "Threads per worker running the app under granian.",
    ),
    Setting(
        "TODOSCALE_METRICS_DIR",
        "METRICS_DIR",
        str,
        "`instance/metrics`",
        "Folder of the metrics files every process of this host shares (one subfolder per "
        "server, Socket.IO service or worker, wiped when it starts), profiles and snapshots.",
    ),
    Setting(
        "TODOSCALE_METRICS_TOKEN",
        "METRICS_TOKEN",
        str,
        "unset",
        "Bearer token a Prometheus scraper sends to read `/metrics` (admins' tokens and "
        "sessions work too).",
    ),
    Setting(
        "TODOSCALE_METRICS_LOOPBACK",
        "METRICS_LOOPBACK",
        _bool,
        "1, except in production",
        "Let clients on loopback read `/metrics` without credentials (the embedded default).",
    ),
    Setting(
        "TODOSCALE_OBSERVE",
        "OBSERVE",
        _bool,
        "1",
        "The always-on per-request layer: request metrics by route, in-flight requests, SQL "
        "counting, the console's per-route statistics, slow-request lines and on-demand "
        "profiles. 0 turns it off (event counters, /proc and job figures stay on `/metrics`).",
    ),
    Setting(
        "TODOSCALE_SLOW_REQUEST_MS",
        "SLOW_REQUEST_MS",
        float,
        "500",
        "A request slower than this writes a `slow request` log line with its SQL count and time.",
    ),
    Setting(
        "TODOSCALE_OTEL_ENDPOINT",
        "OTEL_ENDPOINT",
        str,
        "unset (no tracing)",
        "OTLP/HTTP endpoint to export OpenTelemetry spans to, e.g. "
        "`http://127.0.0.1:4318/v1/traces`; unset, no tracer is set up.",
    ),
    Setting(
        "TODOSCALE_OTEL_SAMPLE_RATIO",
        "OTEL_SAMPLE_RATIO",
        float,
        "0.05",
        "Share of requests traced when tracing is on (0-1; a traced caller's choice is kept).",
    ),
    Setting(
        "TODOSCALE_INSTANCE_ID",
        "INSTANCE_ID",
        str,
        "`hostname:pid`; none in production",
        "Sent as the `X-Instance-ID` response header, to tell instances apart behind nginx; "
        "production sends it only when set (never the host name and pid).",
    ),
)


class Config:
    """Defaults shared by every environment (the embedded set-up)."""

    ENV_NAME = "development"
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None  # None: SQLite in the instance folder
    INSTANCE_PATH: str | None = None
    DB_POOL_SIZE = 5
    DB_MAX_OVERFLOW = 10
    DB_POOL_TIMEOUT = 10
    DB_STATEMENT_TIMEOUT_MS = 5000
    TOKEN_TTL_SECONDS = 24 * 3600
    ENCRYPTION_KEYS: list[str] | None = None
    TOKEN_LAST_USED_SECONDS = 300.0
    REDIS_URL: str | None = None
    BROKER_URL: str | None = None
    PUBLIC_URL: str | None = None
    TRUSTED_HOSTS: list[str] | None = None
    WORKER_CONCURRENCY = 2
    JOB_LEASE_SECONDS = 60
    JOB_SWEEP_SECONDS = 15.0
    REMINDER_WINDOW_MINUTES = 15
    REMINDER_INTERVAL_SECONDS = 60.0
    PURGE_INTERVAL_SECONDS = 3600.0
    JOB_RETENTION_DAYS = 7.0
    NOTIFICATION_RETENTION_DAYS = 90.0
    SMTP_URL: str | None = None
    MAIL_FROM = "todoscale@localhost"
    SOCKETIO_MESSAGE_QUEUE: str | None = None
    REALTIME = "emit"
    SOCKETIO_PORT: int | None = None
    SOCKETIO_CORS_ORIGINS: str | None = None
    SOCKETIO_RECHECK_SECONDS = 5.0
    LOCAL_CACHE = "auto"
    LOCAL_CACHE_TTL = 60.0
    MAX_JSON_BYTES = 1024 * 1024
    MAX_CONTENT_LENGTH = 10 * 1024 * 1024
    IMPORT_MAX_ROWS = 1_000_000
    TRUSTED_PROXIES = 0
    LOG_LEVEL = "INFO"
    REQUEST_LOG = True
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_KIB = 64 * 1024
    BIND: str | None = None
    WORKERS: int | None = None
    WORKER_CLASS = "sync"
    THREADS = 1
    SERVER = "granian"
    BLOCKING_THREADS = 4
    INSTANCE_ID: str | None = None
    METRICS_DIR: str | None = None  # None: <instance folder>/metrics
    METRICS_TOKEN: str | None = None
    METRICS_LOOPBACK = True
    OBSERVE = True
    SLOW_REQUEST_MS = 500.0
    OTEL_ENDPOINT: str | None = None
    OTEL_SAMPLE_RATIO = 0.05
    HSTS = False
    JSON_SORT_KEYS = False
    RATE_LIMITS_ENABLED = True
    API_WRITE_LIMIT = "600 per minute"
    IMPORT_LIMIT = "10 per hour"
    ANON_LIMIT = "30 per minute"
    LOGIN_FAILURES_PER_ADDRESS = "10 per 15 minutes"
    LOGIN_FAILURES_PER_ACCOUNT = "100 per hour"
    COMPRESS_MIN_SIZE = 500
    SESSION_IDLE_MINUTES = 120
    SESSION_MAX_DAYS = 14
    SESSION_COOKIE_NAME = "todoscale_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    # The web and auth blueprints check CSRF on their own routes; the API uses bearer tokens.
    WTF_CSRF_CHECK_DEFAULT = False
    # A form token lives as long as the server-side session it belongs to.
    WTF_CSRF_TIME_LIMIT = None
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "UTC"


class DevelopmentConfig(Config):
    """The embedded default: SQLite, generated secret key, nothing else to set up."""


class TestingConfig(Config):
    """For the test suite: cheap password hashing, no request log noise."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    REQUEST_LOG = False
    # Live updates are the realtime tests' business: they build apps that emit or serve.
    REALTIME = "off"
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_KIB = 64
    # The suite's many registrations and logins would trip the limits; the limit tests
    # turn them on in apps of their own.
    RATE_LIMITS_ENABLED = False


class ProductionConfig(Config):
    """Production: a secret key must be given; HSTS and the `__Host-` cookie on."""

    ENV_NAME = "production"
    HSTS = True
    METRICS_LOOPBACK = False
    SESSION_COOKIE_SECURE = True
    INSTANCE_ID = ""  # no X-Instance-ID unless set: a host name and pid help an attacker


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed; the message says how to fix it."""


def load_config(
    environ: Mapping[str, str] | None = None, env_name: str | None = None
) -> dict[str, Any]:
    """Return the settings of the chosen environment overlaid with `TODOSCALE_*` variables."""
    environ = os.environ if environ is None else environ
    name = env_name or environ.get("TODOSCALE_ENV", "development")
    if name not in CONFIGS:
        raise ConfigurationError(
            f"TODOSCALE_ENV={name!r} is not an environment; use one of {', '.join(CONFIGS)}."
        )
    cls = CONFIGS[name]
    values = {key: getattr(cls, key) for key in dir(cls) if key.isupper()}
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        if raw is None or setting.env == "TODOSCALE_ENV":
            continue
        try:
            values[setting.key] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{setting.env} is malformed: {exc}") from exc
    values["ENV_NAME"] = name
    return values


def ensure_secret_key(values: dict[str, Any], instance_path: str) -> str:
    """Return the configured secret key; outside production, create one in the instance folder."""
    if values.get("SECRET_KEY"):
        return str(values["SECRET_KEY"])
    if values["ENV_NAME"] == "production":
        raise ConfigurationError(
            "TODOSCALE_SECRET_KEY is not set. Export a long random value, e.g. "
            "TODOSCALE_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))'), "
            "or run with TODOSCALE_ENV=development."
        )
    path = os.path.join(instance_path, "secret_key")
    if os.path.exists(path):
        return _read_key(path)
    # The key is written whole to a file of its own, then linked into place. link() fails
    # when the name exists, so when several workers start at once exactly one key wins, and
    # no reader ever finds the name before its content (as it could between an O_EXCL
    # create and the write that followed it).
    fd, temporary = tempfile.mkstemp(dir=instance_path, prefix=".secret_key.")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as new:
            new.write(os.urandom(32).hex())
            new.flush()
            os.fsync(new.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: its key is the key
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_key(path)


def _read_key(path: str) -> str:
    with open(path, encoding="ascii") as existing:
        key = existing.read().strip()
    if not key:
        raise ConfigurationError(
            f"The secret key file {path} is empty. Delete it (a new key is generated) "
            "or set TODOSCALE_SECRET_KEY."
        )
    return key


def broker_url(values: Mapping[str, Any], instance_path: str) -> str:
    """The Celery broker: TODOSCALE_BROKER_URL, else Redis, else a persistent local SQLite queue."""
    if values.get("BROKER_URL"):
        return str(values["BROKER_URL"])
    if values.get("REDIS_URL"):
        return str(values["REDIS_URL"])
    return "sqla+sqlite:///" + os.path.join(instance_path, "queue.sqlite")


def instance_folder(values: Mapping[str, Any]) -> str:
    """The instance folder: TODOSCALE_INSTANCE_PATH, else `./instance`, made absolute."""
    return os.path.abspath(values.get("INSTANCE_PATH") or "instance")


def metrics_root(values: Mapping[str, Any]) -> str:
    """The host's metrics folder: TODOSCALE_METRICS_DIR, else `<instance folder>/metrics`."""
    return os.path.abspath(
        values.get("METRICS_DIR") or os.path.join(instance_folder(values), "metrics")
    )
