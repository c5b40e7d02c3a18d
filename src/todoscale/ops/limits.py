"""Rate limits (Flask-Limiter) on API writes and anonymous routes; their hooks also run the
login throttle (`ops.throttle`).

Storage is Redis when `REDIS_URL` is set, else memory (per process, `SweptMemoryStorage`).
A Redis outage never becomes a 500: the ordinary limits fail open (logged once per
interval, Redis tried again after a pause), while login throttling falls back to this
process's own counts.

Flask-Limiter keeps its storage and limits on the extension object, so one object cannot
serve two apps with different settings (the tests and a cluster build several); each app
gets its own, kept in the set `app.extensions["limiter"]` by Flask-Limiter itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_limiter import HeaderNames, Limiter
from limits.storage import MemoryStorage
from redis.exceptions import RedisError
from werkzeug.exceptions import TooManyRequests

from todoscale.instruments import RATE_LIMITED
from todoscale.ops import throttle
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
# After a storage error the ordinary limits are skipped this long (fail open), so an outage
# costs one Redis attempt per process per pause, not one per request.
OUTAGE_PAUSE_SECONDS = 5.0
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


class Breaker:
    """Open for a pause after the limits' storage failed: meanwhile the limits are skipped."""

    def __init__(self, pause: float | None = None) -> None:
        self.pause = OUTAGE_PAUSE_SECONDS if pause is None else pause
        self.open_until = 0.0

    def closed(self) -> bool:
        """True when the storage may be tried."""
        return time.monotonic() >= self.open_until

    def trip(self) -> None:
        """Note a storage error (call it in the `except` block: the error is logged)."""
        self.open_until = time.monotonic() + self.pause
        logger.error(
            "Redis is unreachable; rate limits are not enforced (fail open) until it answers",
            exc_info=True,
        )

    def call(self, hook: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """`hook(*args)` while closed; `default` while open or when the storage fails."""
        if not self.closed():
            return default
        try:
            return hook(*args)
        except (RedisError, OSError):
            self.trip()
            return default


def client_address() -> str:
    """The client's address (the real one behind trusted proxies: ProxyFix sets it)."""
    return request.remote_addr or "unknown"


def _api_user_id() -> str | None:
    """The id of the user the bearer token names, looked up once per request."""
    if "limit_user_id" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        bearer = scheme.lower() == "bearer" and token
        g.limit_user_id = token_user_id(token.strip()) if bearer else None
    user_id: str | None = g.limit_user_id
    return user_id


def _not_an_api_write() -> bool:
    # The method first: a read never looks the token up for the limiter.
    return request.method not in WRITE_METHODS or _api_user_id() is None


def _importer_id() -> str:
    """The user who imports: the browser's (web pages) or the bearer token's (the API)."""
    user = g.get("user")
    return (user.id if user is not None else _api_user_id()) or ""


def _not_an_import() -> bool:
    return request.endpoint not in IMPORT_ENDPOINTS or not _importer_id()


def _not_anonymous_route() -> bool:
    return request.endpoint not in ANONYMOUS_ENDPOINTS


def _never_limited() -> bool:
    return request.method not in WRITE_METHODS and request.endpoint not in ANONYMOUS_ENDPOINTS


def _setting(key: str) -> Callable[[], str]:
    return lambda: str(current_app.config[key])


def _relative_reset(response: Response) -> Response:
    # Flask-Limiter sends the reset as a Unix time; the draft IETF header is seconds from
    # now (a delta is far below any Unix time of this century).
    reset = response.headers.get("RateLimit-Reset")
    if reset is not None and reset.isdigit() and int(reset) > EPOCH_2001:
        response.headers["RateLimit-Reset"] = str(max(0, int(reset) - int(time.time())))
    # Flask-Limiter adds Retry-After to every limited response; it means something on 429.
    if response.status_code != TooManyRequests.code and reset is not None:
        response.headers.pop("Retry-After", None)
    return response


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, its stale keys swept on the caller's thread once a second.

    The library's own storage starts a 10 ms `threading.Timer` to sweep whenever the last
    one has ended: under load that is a thread started per request, and the request waits
    for the new thread to take the GIL (py-spy: a fifth of a `POST`'s time). Fixed windows
    expire on read anyway (`get`); the sweep only bounds memory, which once a second does
    as well. Registered under its own scheme by limits' storage registry.
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


def _build_limiter(app: Flask) -> Limiter:
    limiter = Limiter(
        client_address,
        storage_uri=app.config["REDIS_URL"] or "todoscale-memory://",
        storage_options=REDIS_OPTIONS if app.config["REDIS_URL"] else {},
        strategy="fixed-window",
        headers_enabled=True,
        header_name_mapping=HEADERS,
        key_prefix="todoscale",
        # Storage errors reach our hooks, which fail open (see `_install_hooks`).
        swallow_errors=False,
    )
    api, auth = app.blueprints["api"], app.blueprints["auth"]
    assert isinstance(api, Blueprint) and isinstance(auth, Blueprint)
    # One budget per user across every write endpoint (shared), not one per endpoint.
    limiter.shared_limit(
        _setting("API_WRITE_LIMIT"),
        "api-writes",
        key_func=lambda: _api_user_id() or "",
        exempt_when=_not_an_api_write,
        error_message="Too many writes; wait for the time in 'Retry-After'.",
    )(api)
    # One import budget per user, whether the import comes through the API or a web page.
    web = app.blueprints["web"]
    assert isinstance(web, Blueprint)
    import_limit = limiter.shared_limit(
        _setting("IMPORT_LIMIT"),
        "imports",
        key_func=_importer_id,
        exempt_when=_not_an_import,
        error_message="Too many imports; wait for the time in 'Retry-After'.",
    )
    for blueprint in (api, web):
        import_limit(blueprint)
    for blueprint in (api, auth):
        limiter.limit(
            _setting("ANON_LIMIT"),
            exempt_when=_not_anonymous_route,
            error_message="Too many requests from this address; wait for 'Retry-After'.",
        )(blueprint)
    return limiter


def _install_hooks(app: Flask, limiter: Limiter) -> None:
    """Run Flask-Limiter's hooks and ours only on requests a limit can apply to."""
    # Flask-Limiter's three hooks resolve, evaluate and clean up limits on every request,
    # even when none applies: measured at 75 us on /healthz (half that request's cost) and
    # 110 us on GET /api/v1/todos. Reads outside the anonymous routes (the hot path) carry no
    # limit, so one cheap test skips them all (9 us). Its hooks are taken out and called
    # from ours (a Flask-Limiter that renames them fails here, at start-up, loudly).
    before = app.before_request_funcs.setdefault(None, [])
    after = app.after_request_funcs.setdefault(None, [])
    teardown = app.teardown_request_funcs.setdefault(None, [])
    check = limiter._check_request_limit
    inject = next(f for f in after if isinstance(f, partial) and f.args == (limiter,))
    release = getattr(limiter, "_Limiter__release_context")  # noqa: B009 (name-mangled)
    before.remove(check)
    after.remove(inject)
    teardown.remove(release)
    breaker = Breaker()

    def check_limits() -> None:
        if _never_limited():
            return
        throttle.check_login(client_address())  # first: a throttled login touches no limit
        breaker.call(check)

    def add_headers(response: Response) -> Response:
        if _never_limited():
            return response
        if response.status_code == TooManyRequests.code:
            RATE_LIMITED.labels("login" if g.get("login_throttled") else "limit").inc()
        throttle.settle_login()
        return _relative_reset(breaker.call(inject, response, default=response))

    def release_context(exc: BaseException | None = None) -> None:
        if not _never_limited():
            release(exc)

    app.before_request(check_limits)
    app.after_request(add_headers)
    app.teardown_request(release_context)


def init_app(app: Flask) -> None:
    """Bind the limits and the login throttle to `app` (after its blueprints are registered)."""
    if not app.config["RATE_LIMITS_ENABLED"]:
        return
    throttle.init_app(app)
    for each in (logger, throttle.logger):  # an outage is logged once per interval
        if _storage_errors not in each.filters:
            each.addFilter(_storage_errors)
    limiter = _build_limiter(app)
    limiter.init_app(app)
    _install_hooks(app, limiter)
