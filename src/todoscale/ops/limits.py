"""Rate limits (Flask-Limiter) on API writes, imports and anonymous routes.

A Redis outage is Flask-Limiter's in-memory fallback, with one fallback limit that applies
to nothing: the ordinary limits fail open (logged once per interval) while the library tries
Redis again after a growing pause (1 s doubling to 32 s). Login throttling keeps its own
counts and fallback (`auth.throttle`).

Reads outside the anonymous routes (the hot path) carry no limit, yet Flask-Limiter's hooks
resolve and evaluate limits on every request: with its `request_filter` saying "none here",
its three hooks still cost 60-85 us of CPU on `GET /api/v1/todos` (tests/ops, 2026-12-01,
against 16 us for one test of our own before them). So whatever `Limiter.init_app`
registers runs behind `never_limited()` instead; the hooks are found by what init_app added
to Flask's hook lists, not by Flask-Limiter's private names.

Storage is Redis when `REDIS_URL` is set, else memory (per process, `SweptMemoryStorage`).
Flask-Limiter keeps its storage and limits on the extension object, so one object cannot
serve two apps with different settings (the tests and a cluster build several); each app
gets its own, kept in the set `app.extensions["limiter"]` by Flask-Limiter itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_limiter import HeaderNames, Limit, Limiter, RequestLimit, RouteLimit
from limits.storage import MemoryStorage
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import TooManyRequests

from todoscale.extensions import db
from todoscale.instruments import RATE_LIMITED
from todoscale.services.accounts import token_user_id

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Routes a client reaches without an account: limited per client address.
ANONYMOUS_ENDPOINTS = frozenset(
    {"api.users.create", "api.tokens.create", "auth.login", "auth.register"}
)
# Routes that queue an import: a budget of their own per user, beside the write budget.
IMPORT_ENDPOINTS = frozenset({"api.jobs.import_", "web.jobs.import_"})
# Short timeouts: during an outage a request waits at most this long for Redis.
REDIS_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
WARN_INTERVAL_SECONDS = 60.0
HEADERS = {
    HeaderNames.LIMIT: "RateLimit-Limit",
    HeaderNames.REMAINING: "RateLimit-Remaining",
    HeaderNames.RESET: "RateLimit-Reset",
    HeaderNames.RETRY_AFTER: "Retry-After",
}
EPOCH_2001 = 978_307_200


class OncePerInterval(logging.Filter):
    """Let a given warning or error through at most once per interval (an outage is one
    event, not one per request); lower levels pass."""

    def __init__(self, interval: float = WARN_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True when this message was not logged within the interval."""
        if record.levelno < logging.WARNING:
            return True
        now = time.monotonic()
        key = str(record.msg)
        if now - self._last.get(key, -self.interval) < self.interval:
            return False
        self._last[key] = now
        return True


_storage_errors = OncePerInterval()


def log_outages_once(each: logging.Logger) -> None:
    """Let `each` log a storage outage once per interval, not once per request."""
    if _storage_errors not in each.filters:
        each.addFilter(_storage_errors)


def client_address() -> str:
    """The client's address (the real one behind trusted proxies: ProxyFix sets it)."""
    return request.remote_addr or "unknown"


def _api_user_id() -> str | None:
    """The id of the user the bearer token names, looked up once per request."""
    if "limit_user_id" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        bearer = scheme.lower() == "bearer" and token
        try:
            g.limit_user_id = token_user_id(token.strip()) if bearer else None
        except OperationalError:
            # The database is unreachable. Flask-Limiter takes an error of a key function for
            # its storage's (every limit would fail open for its pause) and goes on with the
            # session's transaction broken, which the view's own lookup then meets as a 500.
            # Roll back and let the request through unlimited: the view meets the database
            # itself, and answers 503 while it is gone (PostgreSQL stopped under load).
            db.session.rollback()
            g.limit_user_id = None
    user_id: str | None = g.limit_user_id
    return user_id


def _not_an_api_write() -> bool:
    # The method first: a read never looks the token up for the limiter.
    return request.method not in WRITE_METHODS or _api_user_id() is None


def _importer_id() -> str:
    """The user who imports: the browser's (web pages) or the bearer token's (the API)."""
    user = g.get("user")
    return (user.id if user is not None else _api_user_id()) or ""


def never_limited() -> bool:
    """True for a request no limit applies to: a read outside the anonymous routes."""
    return request.method not in WRITE_METHODS and request.endpoint not in ANONYMOUS_ENDPOINTS


def _redis_down() -> bool:
    # The fallback limit's exemption: Flask-Limiter asks it only while its storage is down.
    logger.error("Redis is unreachable; rate limits are not enforced (fail open) until it answers")
    return True


# Flask-Limiter's in-memory fallback, used as a circuit breaker: while Redis is down this one
# limit replaces the others and exempts every request. (Its type hint says `list[str]`; the
# constructor takes `Limit`s as it does for the default limits.)
FAIL_OPEN = [Limit("1 per second", client_address, exempt_when=_redis_down)]


def _count_breach(limit: RequestLimit) -> None:
    RATE_LIMITED.labels("limit").inc()


def _setting(key: str) -> Callable[[], str]:
    return lambda: str(current_app.config[key])


def relative_reset(response: Response) -> Response:
    """`RateLimit-Reset` in seconds from now, and `Retry-After` only on a 429."""
    # Flask-Limiter sends the reset as a Unix time; the draft IETF header is seconds from
    # now (a delta is far below any Unix time of this century).
    reset = response.headers.get("RateLimit-Reset")
    if reset is not None and reset.isdigit() and int(reset) > EPOCH_2001:
        response.headers["RateLimit-Reset"] = str(max(0, int(reset) - int(time.time())))
    # Flask-Limiter adds Retry-After to every limited response; it means something on 429,
    # and on the app's own refusals (a 503 while the database is gone: its own value).
    if response.status_code != TooManyRequests.code and reset is not None:
        own = g.pop("own_retry_after", None)
        if own is None:
            response.headers.pop("Retry-After", None)
        else:
            response.headers["Retry-After"] = own
    return response


def keep_own_retry_after(response: Response) -> Response:
    """Note the app's own Retry-After before Flask-Limiter's headers replace it."""
    if "Retry-After" in response.headers:
        g.own_retry_after = response.headers["Retry-After"]
    return response


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, its stale keys swept on the caller's thread once a second.

    The library's own storage starts a 10 ms `threading.Timer` to sweep whenever the last
    one has ended: under load that is a thread started per request, and the request waits
    for the new thread to take the GIL (py-spy: a fifth of a `POST`'s time). limits 5.8
    (the newest) has no option against it and no public hook, so the name-mangled one is
    replaced. Fixed windows expire on read anyway (`get`); the sweep only bounds memory,
    which once a second does as well. Registered under its own scheme by limits' storage
    registry.
    """

    STORAGE_SCHEME = ["todoscale-memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **_: str):
        self.next_sweep = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **_)

    # The name-mangled hook MemoryStorage calls before every increment.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def _attach(app: Flask, endpoints: frozenset[str], limit: RouteLimit) -> None:
    """Put `limit` on each of these endpoints' views (checked as the view is called)."""
    views: dict[str, Callable[..., Any]] = app.view_functions
    for endpoint in endpoints:
        views[endpoint] = limit(views[endpoint])


def _build_limiter(app: Flask) -> Limiter:
    limiter = Limiter(
        client_address,
        storage_uri=app.config["REDIS_URL"] or "todoscale-memory://",
        storage_options=REDIS_OPTIONS if app.config["REDIS_URL"] else {},
        strategy="fixed-window",
        headers_enabled=True,
        header_name_mapping=HEADERS,
        key_prefix="todoscale",
        on_breach=_count_breach,
        # While Redis is down: no limit (fail open), Redis tried again after a pause, and
        # whatever else fails in the limits is logged, never a 500.
        in_memory_fallback_enabled=True,
        in_memory_fallback=FAIL_OPEN,  # type: ignore[arg-type]
        swallow_errors=True,
    )
    api = app.blueprints["api"]
    assert isinstance(api, Blueprint)
    # One budget per user across every write endpoint (shared), not one per endpoint.
    limiter.shared_limit(
        _setting("API_WRITE_LIMIT"),
        "api-writes",
        key_func=lambda: _api_user_id() or "",
        exempt_when=_not_an_api_write,
        error_message="Too many writes; wait for the time in 'Retry-After'.",
    )(api)
    # The other limits are attached to the endpoints they govern, not to whole blueprints:
    # Flask-Limiter resolves and evaluates every blueprint limit on every request of the
    # blueprint (an exempt one too), which cost a plain write two needless checks.
    # `override_defaults=False` keeps the blueprint's write limit on those endpoints.
    # One import budget per user, whether the import comes through the API or a web page.
    _attach(
        app,
        IMPORT_ENDPOINTS,
        limiter.shared_limit(
            _setting("IMPORT_LIMIT"),
            "imports",
            key_func=_importer_id,
            exempt_when=lambda: not _importer_id(),
            override_defaults=False,
            error_message="Too many imports; wait for the time in 'Retry-After'.",
        ),
    )
    # Per client address and per route.
    _attach(
        app,
        ANONYMOUS_ENDPOINTS,
        limiter.limit(
            _setting("ANON_LIMIT"),
            override_defaults=False,
            error_message="Too many requests from this address; wait for 'Retry-After'.",
        ),
    )
    return limiter


def _where_limited(
    before: list[Callable[[], object]],
    after: list[Callable[[Response], Response]],
    teardown: list[Callable[[BaseException | None], object]],
) -> tuple[Callable[[], None], Callable[[Response], Response], Callable[..., None]]:
    """One hook of each kind that runs the given ones only where a limit can apply."""

    def check() -> None:
        if not never_limited():
            for hook in before:
                hook()  # raises RateLimitExceeded on a breach; returns nothing

    def add_headers(response: Response) -> Response:
        if not never_limited():
            for hook in reversed(after):  # Flask's order: the last registered runs first
                response = hook(response)
        return response

    def release(exc: BaseException | None = None) -> None:
        if not never_limited():
            for hook in teardown:
                hook(exc)

    return check, add_headers, release


def init_app(app: Flask) -> None:
    """Bind the limits to `app` (after its blueprints are registered)."""
    if not app.config["RATE_LIMITS_ENABLED"]:
        return
    # The login throttle's logger by name: auth and ops import nothing of each other.
    for name in (__name__, "todoscale.auth.throttle"):
        log_outages_once(logging.getLogger(name))
    library = logging.getLogger("flask-limiter")
    log_outages_once(library)  # errors it swallows, once per interval
    # Its one warning, "falling back to in-memory storage", misstates this app's fallback
    # (which limits nothing): `_redis_down` says what happens instead.
    library.setLevel(logging.ERROR)
    lists: list[dict[str | None, list[Any]]] = [
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
    ]
    kept = [list(each.setdefault(None, [])) for each in lists]
    app.after_request(relative_reset)  # first, so it runs after the library's headers
    _build_limiter(app).init_app(app)
    added: list[list[Any]] = []
    for each, old in zip(lists, kept, strict=True):
        added.append(each[None][len(old) :])  # init_app appends; put the lists back as they were
        each[None] = old
    before, after, teardown = added
    check, add_headers, release = _where_limited(before, after, teardown)
    app.before_request(check)
    app.after_request(add_headers)
    app.after_request(keep_own_retry_after)  # last, so it runs before the library's headers
    app.teardown_request(release)
