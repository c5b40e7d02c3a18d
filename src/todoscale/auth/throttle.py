"""Login throttling: failed password checks per (account, address) and per account.

Every attempt reserves its place in the budget *before* the password is verified, by one
atomic increment that returns the new count (in Redis, or in this process under a lock),
and gives it back afterwards unless the verification failed. Parallel guesses therefore
cannot all pass a check made before any of them was counted: 50 concurrent wrong passwords
against a budget of 10 cost at most 10 argon2 verifications.

Whether a verification failed comes from `services.accounts.authenticate` itself (the
`password_checked` signal), not from status codes, so the current-password check of a
password change is throttled like a login and a refused new password costs no budget.

Its hooks are its own (registered before the rate limits' hooks, so a throttled login
touches no limit) and on only where the rate limits are (`RATE_LIMITS_ENABLED`); its outage
warning is let through once per interval by `ops.limits`, which names its logger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from flask import Flask, Response, current_app, g, has_request_context, request
from limits import RateLimitItem, parse
from werkzeug.exceptions import TooManyRequests

from todoscale.instruments import RATE_LIMITED
from todoscale.services.audit import security_event
from todoscale.signals import password_checked

logger = logging.getLogger(__name__)

EXTENSION = "todoscale.login_throttle"
# The endpoints that check a password, and where each finds the account it names.
LOGIN_ENDPOINTS = frozenset({"api.tokens.create", "auth.login", "web.profile.password"})
# An address an account logged in from in this window may still log in once the account's
# own failure budget is spent (a spray of wrong passwords from elsewhere must not lock its
# owner out).
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600
PREFIX = "todoscale:login:"

# KEYS[1] the counter, ARGV[1] its window: the new count and the seconds left in the window.
_HIT = """local count = redis.call('incr', KEYS[1])
if count == 1 then redis.call('expire', KEYS[1], ARGV[1]) end
return {count, redis.call('ttl', KEYS[1])}"""
# Never below zero, never bringing back a counter whose window ended.
_REFUND = """local count = tonumber(redis.call('get', KEYS[1]) or '0')
if count > 0 then return redis.call('decr', KEYS[1]) end
return 0"""


class Counters(Protocol):
    """Where the counts live: Redis (every process) or this process."""

    def hit(self, key: str, window: int) -> tuple[int, int]:
        """Add one; return the new count and the seconds left in its window."""
        ...

    def refund(self, key: str) -> None:
        """Take one back (never below zero)."""
        ...

    def mark(self, key: str, seconds: int) -> None:
        """Remember `key` for `seconds` from now."""
        ...

    def marked(self, key: str) -> bool:
        """True while `key` is remembered."""
        ...


class MemoryCounters:
    """Counts of this process, each change made under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def _live(self, key: str, now: float) -> tuple[int, float]:
        count, ends = self._counts.get(key, (0, 0.0))
        return (count, ends) if ends > now else (0, 0.0)

    def hit(self, key: str, window: int) -> tuple[int, int]:
        """Add one; return the new count and the seconds left in its window."""
        now = time.monotonic()
        with self._lock:
            count, ends = self._live(key, now)
            if len(self._counts) > 100_000:  # bounded: forget every finished window
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._counts[key] = (count + 1, ends or now + window)
            return count + 1, max(1, int((ends or now + window) - now))

    def refund(self, key: str) -> None:
        """Take one back (never below zero)."""
        now = time.monotonic()
        with self._lock:
            count, ends = self._live(key, now)
            if count > 0:
                self._counts[key] = (count - 1, ends)

    def mark(self, key: str, seconds: int) -> None:
        """Remember `key` for `seconds` from now."""
        with self._lock:
            self._counts[key] = (1, time.monotonic() + seconds)

    def marked(self, key: str) -> bool:
        """True while `key` is remembered."""
        with self._lock:
            return self._live(key, time.monotonic())[0] > 0


class RedisCounters:
    """Counts in Redis, shared by every process and host; each change is one atomic script."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._hit = client.register_script(_HIT)
        self._refund = client.register_script(_REFUND)

    def hit(self, key: str, window: int) -> tuple[int, int]:
        """Add one; return the new count and the seconds left in its window."""
        count, ttl = self._hit(keys=[key], args=[window])
        return int(count), max(1, int(ttl))

    def refund(self, key: str) -> None:
        """Take one back (never below zero)."""
        self._refund(keys=[key])

    def mark(self, key: str, seconds: int) -> None:
        """Remember `key` for `seconds` from now."""
        self._client.set(key, 1, ex=seconds)

    def marked(self, key: str) -> bool:
        """True while `key` is remembered."""
        return bool(self._client.exists(key))


class LoginThrottled(TooManyRequests):
    """Too many failed logins: 429 with `Retry-After` and the `RateLimit-*` headers."""

    def __init__(self, limit: RateLimitItem, retry_after: int) -> None:
        super().__init__(
            "Too many failed logins for this account; wait for the time in 'Retry-After'.",
            retry_after=retry_after,
        )
        self.limit = limit
        self.seconds = retry_after

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        """The usual headers plus the limit that was hit."""
        return [
            *super().get_headers(*args, **kwargs),
            ("RateLimit-Limit", str(self.limit.amount)),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", str(self.seconds)),
        ]


@dataclass
class Attempt:
    """One request's reservations, settled after its response."""

    counters: Counters
    account: str
    address: str
    reserved: list[str]
    failed: bool = False
    succeeded: bool = False


class LoginThrottle:
    """The budgets of failed password checks, in Redis when configured, else in memory."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.per_address = parse(config["LOGIN_FAILURES_PER_ADDRESS"])
        self.per_account = parse(config["LOGIN_FAILURES_PER_ACCOUNT"])
        self.local: Counters = MemoryCounters()
        self.shared: Counters | None = None
        if config["REDIS_URL"]:
            options = {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
            self.shared = RedisCounters(redis.Redis.from_url(config["REDIS_URL"], **options))

    def _using(self, action: Callable[[Counters], Any]) -> Any:
        if self.shared is not None:
            try:
                return action(self.shared)
            except (redis.RedisError, OSError):
                logger.warning(
                    "Redis is unreachable; login throttling uses this process's own counts",
                    exc_info=True,
                )
        return action(self.local)

    def reserve(self, account: str, address: str) -> Attempt:
        """Take a place in the budgets of `account` (from `address`), or raise LoginThrottled."""
        return self._using(lambda counters: self._reserve(counters, account, address))

    def _reserve(self, counters: Counters, account: str, address: str) -> Attempt:
        attempt = Attempt(counters, account, address, [])
        budgets = [(self.per_address, f"{PREFIX}failures:{account}:{address}")]
        if not counters.marked(f"{PREFIX}known:{account}:{address}"):
            budgets.append((self.per_account, f"{PREFIX}failures:{account}"))
        for limit, key in budgets:
            count, seconds_left = counters.hit(key, limit.get_expiry())
            attempt.reserved.append(key)
            if count > limit.amount:
                g.login_attempt = attempt  # settled (given back) after the 429
                raise LoginThrottled(limit, seconds_left)
        return attempt

    def settle(self, attempt: Attempt) -> None:
        """Keep the places of a failed verification; give back the others."""
        if attempt.failed:
            return

        def settle(counters: Counters) -> None:
            for key in attempt.reserved:
                counters.refund(key)
            if attempt.succeeded:
                known = f"{PREFIX}known:{attempt.account}:{attempt.address}"
                counters.mark(known, KNOWN_ADDRESS_SECONDS)

        try:
            settle(attempt.counters)
        except (redis.RedisError, OSError):
            logger.warning("Redis is unreachable; a login attempt stays counted", exc_info=True)


def _login_account() -> str | None:
    """The account a password check of this request names, as the user typed it."""
    if request.method != "POST" or request.endpoint not in LOGIN_ENDPOINTS:
        return None
    name: str | None
    if request.endpoint == "api.tokens.create":
        auth = request.authorization
        name = auth.username if auth is not None and auth.type == "basic" else None
    elif request.endpoint == "auth.login":
        name = request.form.get("username") if g.get("user") is None else None
    else:  # the current password of a password change
        name = g.user.username if g.get("user") is not None else None
    return name.strip().lower() if name and name.strip() else None


def check_login() -> None:
    """Before the view: reserve this request's password check, or answer 429."""
    account = _login_account()
    if account is not None:
        throttle: LoginThrottle = current_app.extensions[EXTENSION]
        try:
            # The address the rate limits also key on (ProxyFix makes it the real client's).
            address = request.remote_addr or "unknown"
            g.login_attempt = throttle.reserve(account, address)
        except LoginThrottled:
            RATE_LIMITED.labels("login").inc()
            security_event("login.throttled", username=account)
            raise


def settle_login(response: Response) -> Response:
    """After the response: settle what `check_login` reserved."""
    attempt: Attempt | None = g.pop("login_attempt", None)
    if attempt is not None:
        throttle: LoginThrottle = current_app.extensions[EXTENSION]
        throttle.settle(attempt)
    return response


def _on_password_checked(sender: Any, *, ok: bool, **extra: Any) -> None:
    if not has_request_context():
        return
    attempt: Attempt | None = g.get("login_attempt")
    if attempt is not None:
        attempt.failed = attempt.failed or not ok
        attempt.succeeded = attempt.succeeded or ok


def init_app(app: Flask) -> None:
    """Give `app` its throttle and its hooks (after `g.user` is loaded: a password change
    names the logged-in account)."""
    if not app.config["RATE_LIMITS_ENABLED"]:
        return
    app.extensions[EXTENSION] = LoginThrottle(app.config)
    password_checked.connect(_on_password_checked)  # blinker ignores a repeat
    app.before_request(check_login)
    app.after_request(settle_login)
