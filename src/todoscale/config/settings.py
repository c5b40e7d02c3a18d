"""Every `TODOSCALE_*` setting, declared once: name, type, default and meaning.

A field's name is its key in the app's config; its variable is `TODOSCALE_<name>` unless an
alias names another; its docstring is its meaning, as the README's table shows it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasGenerator, BaseModel, BeforeValidator, ConfigDict, Field

VARIABLE_PREFIX = "TODOSCALE_"


def _bool(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false), got {value!r}")


def _list(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return [item.strip() for item in value.split(",") if item.strip()]


# `1/0, true/false, yes/no, on/off`, as the variables have always taken them (an empty value
# is false); and comma-separated lists.
Bool = Annotated[bool, BeforeValidator(_bool)]
CommaList = Annotated[list[str] | None, BeforeValidator(_list)]


def shown(default: str) -> dict[str, Any]:
    """How the README states a default that is computed, or unset, rather than a value."""
    return {"shown": default}


class Settings(BaseModel):
    """Every `TODOSCALE_*` setting, in the README's order, with its embedded default."""

    model_config = ConfigDict(
        frozen=True,
        use_attribute_docstrings=True,  # each setting's docstring is its meaning
        alias_generator=AliasGenerator(validation_alias=lambda name: VARIABLE_PREFIX + name),
    )

    ENV_NAME: str = Field("development", validation_alias="TODOSCALE_ENV")
    """`development` (embedded defaults), `production` or `testing`."""
    SECRET_KEY: str | None = Field(
        None, json_schema_extra=shown("generated into `instance/secret_key`")
    )
    """Signs sessions. Required in production."""
    SQLALCHEMY_DATABASE_URI: str | None = Field(
        None,
        validation_alias="TODOSCALE_DATABASE_URL",
        json_schema_extra=shown("`sqlite:///instance/todoscale.db`"),
    )
    """SQLAlchemy URL; `postgresql+psycopg://user@host/db` for PostgreSQL."""
    INSTANCE_PATH: str | None = Field(None, json_schema_extra=shown("`./instance`"))
    """Folder for the SQLite file, the generated secret key and other local state."""
    DB_POOL_SIZE: int = 5
    """Connections kept open per process (PostgreSQL)."""
    DB_MAX_OVERFLOW: int = 10
    """Extra connections a process may open under load (PostgreSQL)."""
    DB_POOL_TIMEOUT: int = 10
    """Seconds to wait for a pooled connection before failing."""
    DB_STATEMENT_TIMEOUT_MS: int = 5000
    """PostgreSQL statement timeout in milliseconds (0 turns it off)."""
    REDIS_URL: str | None = Field(None, json_schema_extra=shown("unset (embedded: no Redis)"))
    """Redis for the shared cache, rate limits, the job queue and live updates across processes,
    e.g. `redis://127.0.0.1:6379/0`.
    """
    PUBLIC_URL: str | None = Field(
        None, json_schema_extra=shown("`http://localhost:${PORT:-8000}`")
    )
    """The service's address as users reach it: every absolute URL (`Location`, the `url` of
    resources, events, emails) is built from it, never from the request's `Host`. Unset outside
    production, the request's host is used.
    """
    TRUSTED_HOSTS: CommaList = Field(None, json_schema_extra=shown("unset (any host)"))
    """Host names the app answers, comma-separated (`.example.com` for its subdomains); a request
    for another gets 400. Set it, or `TODOSCALE_PUBLIC_URL`, in production.
    """
    BROKER_URL: str | None = Field(
        None,
        json_schema_extra=shown(
            "`TODOSCALE_REDIS_URL`, else `sqla+sqlite:///instance/queue.sqlite`"
        ),
    )
    """Celery broker: RabbitMQ (`amqp://...`) or Redis; the embedded default is a persistent queue
    in a local SQLite file.
    """
    WORKER_CONCURRENCY: int = 2
    """Jobs one Celery worker runs at a time."""
    JOB_LEASE_SECONDS: int = 60
    """A running job whose worker has not reported for this long is taken over by another (a worker
    killed mid-job).
    """
    JOB_SWEEP_SECONDS: float = 15.0
    """How often beat re-sends jobs that are queued too long or whose lease expired."""
    REMINDER_WINDOW_MINUTES: int = 15
    """Todos due within this many minutes get a reminder to every member of their list."""
    REMINDER_INTERVAL_SECONDS: float = 60.0
    """How often beat looks for todos coming due."""
    PURGE_INTERVAL_SECONDS: float = 3600.0
    """How often beat deletes what has outlived its retention: finished jobs, expired tokens and
    sessions, old notifications.
    """
    JOB_RETENTION_DAYS: float = 7.0
    """A finished job (succeeded or failed), with its export file, is deleted this many days after
    it finished.
    """
    NOTIFICATION_RETENTION_DAYS: float = 90.0
    """A notification, read or not, is deleted this many days after it was made."""
    SMTP_URL: str | None = Field(None, json_schema_extra=shown("unset (no email)"))
    """Send reminders by email too: `smtp://user:password@host:587` (STARTTLS) or `smtps://...`
    (TLS); a password is only ever sent over TLS.
    """
    MAIL_FROM: str = Field("todoscale@localhost", json_schema_extra=shown("`todoscale@localhost`"))
    """Sender address of reminder emails."""
    SOCKETIO_MESSAGE_QUEUE: str | None = Field(
        None, json_schema_extra=shown("`TODOSCALE_REDIS_URL`")
    )
    """Where Socket.IO processes exchange events; unset without Redis: one process serves Socket.IO
    and workers hand it their events through the local queue.
    """
    REALTIME: str = Field(
        "emit",
        json_schema_extra=shown("`emit` (`serve` under `todoscale run` and the Socket.IO service)"),
    )
    """`serve`: this process serves `/socket.io/`; `emit`: it only sends events; `off`: it sends
    none (the test suite's default).
    """
    SOCKETIO_RECHECK_SECONDS: float = 5.0
    """How often a Socket.IO process re-checks its connections' tokens and web sessions and closes
    those revoked, logged out or expired since they connected.
    """
    SOCKETIO_PORT: int | None = Field(
        None, json_schema_extra=shown("unset (`PORT` + 1 under `todoscale run`)")
    )
    """Port of the Socket.IO service beside the HTTP server on the same host: pages connect to it
    on their own host name; unset: `/socket.io/` on the page's own origin.
    """
    SOCKETIO_CORS_ORIGINS: str | None = Field(
        None, json_schema_extra=shown("unset (same origin only)")
    )
    """Extra origins allowed to open Socket.IO connections, comma-separated."""
    LOCAL_CACHE: str = "auto"
    """In-process cache of token lookups, memberships and first pages: `auto` (on with SQLite, or
    with a server database when Redis holds the stamps), `on` or `off`.
    """
    LOCAL_CACHE_TTL: float = 60.0
    """Seconds a locally cached value lives at most (changes made through the app invalidate it at
    once).
    """
    ENCRYPTION_KEYS: CommaList = Field(
        None, json_schema_extra=shown("unset (notes stored as they are)")
    )
    """Fernet keys, comma-separated: todo notes are stored encrypted with the first, and read with
    any (put a new key first, run `todoscale keys rotate`, then drop the old).
    """
    TOKEN_TTL_SECONDS: int = Field(86_400, validation_alias="TODOSCALE_TOKEN_TTL")
    """Lifetime of an API token in seconds."""
    TOKEN_LAST_USED_SECONDS: float = 300.0
    """How precise a token's "last used" time is: each process writes it at most this often per
    token, outside the request's transaction.
    """
    MAX_JSON_BYTES: int = 1_048_576
    """Largest JSON request body accepted (413 above)."""
    MAX_CONTENT_LENGTH: int = Field(10_485_760, validation_alias="TODOSCALE_MAX_UPLOAD_BYTES")
    """Largest request body of any kind (file uploads)."""
    IMPORT_MAX_ROWS: int = 1_000_000
    """Most rows one import takes; a file with more is refused with 422, nothing written."""
    TRUSTED_PROXIES: int = 0
    """Number of reverse proxies in front of the app whose `X-Forwarded-*` are trusted."""
    RATE_LIMITS_ENABLED: Bool = True
    """Rate limits and login throttling (stored in Redis when `TODOSCALE_REDIS_URL` is set, else in
    memory, per process).
    """
    API_WRITE_LIMIT: str = "600 per minute"
    """API writes (POST, PATCH, DELETE) per authenticated user."""
    IMPORT_LIMIT: str = "10 per hour"
    """Imports (`POST /api/v1/imports`) per authenticated user, beside the write limit."""
    ANON_LIMIT: str = "30 per minute"
    """Requests per client address to each anonymous route: registration, token issue, the login
    and sign-up pages.
    """
    LOGIN_FAILURES_PER_ADDRESS: str = "10 per 15 minutes"
    """Failed logins to one account from one address before further attempts get 429."""
    LOGIN_FAILURES_PER_ACCOUNT: str = "100 per hour"
    """Failed logins to one account from any address before it accepts logins only from addresses
    it logged in from before.
    """
    COMPRESS_MIN_SIZE: int = Field(500, validation_alias="TODOSCALE_COMPRESS_MIN_BYTES")
    """Responses at least this large are compressed (zstd, br or gzip, as the client accepts)."""
    LOG_LEVEL: str = "INFO"
    """Log level of the app's loggers."""
    REQUEST_LOG: Bool = True
    """Write one JSON line per request."""
    ARGON2_TIME_COST: int = 3
    """argon2id iterations; raise it and old hashes are upgraded at the next login."""
    ARGON2_MEMORY_KIB: int = 65_536
    """argon2id memory per hash in KiB."""
    SESSION_IDLE_MINUTES: int = 120
    """A browser session unused this many minutes ends (the user logs in again)."""
    SESSION_MAX_DAYS: int = 14
    """A browser session ends this many days after login, however active."""
    SESSION_COOKIE_SECURE: Bool = Field(False, json_schema_extra=shown("1 in production, else 0"))
    """Send the session cookie over HTTPS only, named `__Host-todoscale_session` (this host only).
    """
    BIND: str | None = Field(None, json_schema_extra=shown("`127.0.0.1:${PORT:-8000}`"))
    """Address `todoscale serve` listens on."""
    WORKERS: int | None = Field(
        None, json_schema_extra=shown("`2 * cores + 1` (gunicorn), cores (granian)")
    )
    """Worker processes of `todoscale serve`."""
    WORKER_CLASS: str = "sync"
    """gunicorn worker class for `todoscale serve`: `sync`, `gthread` or `gevent`."""
    THREADS: int = 1
    """Threads per worker with the `gthread` worker class."""
    SERVER: str = "granian"
    """HTTP server of `todoscale serve`: `granian` (WSGI) or `gunicorn` (see Deployment)."""
    BLOCKING_THREADS: int = 4
    """Threads per worker running the app under granian."""
    METRICS_DIR: str | None = Field(None, json_schema_extra=shown("`instance/metrics`"))
    """Folder of the metrics files every process of this host shares (one subfolder per server,
    Socket.IO service or worker, wiped when it starts), profiles and snapshots.
    """
    METRICS_TOKEN: str | None = Field(None, json_schema_extra=shown("unset"))
    """Bearer token a Prometheus scraper sends to read `/metrics` (admins' tokens and sessions work
    too).
    """
    METRICS_LOOPBACK: Bool = Field(True, json_schema_extra=shown("1, except in production"))
    """Let clients on loopback read `/metrics` without credentials (the embedded default)."""
    OBSERVE: Bool = True
    """The always-on per-request layer: request metrics by route, in-flight requests, SQL
    counting, the console's per-route statistics, slow-request lines and on-demand profiles.
    0 turns it off (event counters, /proc and job figures stay on `/metrics`).
    """
    SLOW_REQUEST_MS: float = 500.0
    """A request slower than this writes a `slow request` log line with its SQL count and time."""
    OTEL_ENDPOINT: str | None = Field(None, json_schema_extra=shown("unset (no tracing)"))
    """OTLP/HTTP endpoint to export OpenTelemetry spans to, e.g. `http://127.0.0.1:4318/v1/traces`;
    unset, no tracer is set up.
    """
    OTEL_SAMPLE_RATIO: float = 0.05
    """Share of requests traced when tracing is on (0-1; a traced caller's choice is kept)."""
    INSTANCE_ID: str | None = Field(
        None, json_schema_extra=shown("`hostname:pid`; none in production")
    )
    """Sent as the `X-Instance-ID` response header, to tell instances apart behind nginx;
    production sends it only when set (never the host name and pid).
    """
