"""Accounts: registration, passwords, API tokens."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from todoscale.cache import Codec, memoize, replay, track
from todoscale.config.current import app_settings
from todoscale.exceptions import AuthenticationError, ConflictError
from todoscale.extensions import db
from todoscale.models import OWNER, ApiToken, Membership, TodoList, User, utcnow
from todoscale.services.audit import security_event
from todoscale.services.batches import delete_in_batches
from todoscale.services.rules import check_registration
from todoscale.signals import password_checked, tokens_revoked, user_registered

DEFAULT_LIST_NAME = "Inbox"


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


class PasswordCost(NamedTuple):
    """The work an argon2id hash takes: TODOSCALE_ARGON2_TIME_COST and _MEMORY_KIB."""

    time_cost: int
    memory_kib: int

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> PasswordCost:
        """The cost these settings configure."""
        return cls(settings["ARGON2_TIME_COST"], settings["ARGON2_MEMORY_KIB"])


def password_cost() -> PasswordCost:
    """The running app's configured argon2id cost."""
    return PasswordCost.of(app_settings())


T = TypeVar("T")


def off_the_loop(function: Callable[..., T], *args: Any) -> T:
    """Run a CPU-heavy `function` where it cannot stall an event loop.

    In a gevent process (the Socket.IO service) it runs in the hub's pool of real threads,
    so every other connection is served meanwhile (an argon2 hash held the whole process for
    its 0.3-0.9 s); elsewhere right here (argon2 releases the GIL: other threads run).
    """
    # A patched process imported gevent to patch itself: one that did not is not patched,
    # and need not import gevent (1.5 MiB: the Celery worker, granian's processes).
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        from gevent import get_hub

        result: T = get_hub().threadpool.apply(function, args)
        return result
    return function(*args)


def hash_password(password: str, cost: PasswordCost | None = None) -> str:
    """Return the argon2id hash of `password` at `cost` (by default the app's)."""
    return off_the_loop(_hasher_for(*(cost or password_cost())).hash, password)


def register_user(
    username: str,
    email: str,
    password: str,
    *,
    is_admin: bool = False,
    cost: PasswordCost | None = None,
) -> User:
    """Create a user with its default `Inbox` list; 409 when the username or email is taken."""
    username, email = check_registration(username, email, password)
    _check_available(username, email)
    user = User(
        username=username,
        email=email,
        password_hash=hash_password(password, cost),
        is_admin=is_admin,
    )
    inbox = TodoList(owner=user, name=DEFAULT_LIST_NAME, is_default=True)
    db.session.add_all([user, inbox, Membership(todo_list=inbox, user=user, role=OWNER)])
    try:
        db.session.commit()
    except IntegrityError as exc:  # a concurrent registration won the race
        db.session.rollback()
        raise ConflictError("That username or email is already registered.") from exc
    user_registered.send(register_user, user=user)
    return user


def _check_available(username: str, email: str) -> None:
    taken = db.session.execute(
        select(func.lower(User.username) == username.lower(), User.email == email).where(
            (func.lower(User.username) == username.lower()) | (User.email == email)
        )
    ).first()
    if taken is not None:
        field = "username" if taken[0] else "email"
        raise ConflictError(f"That {field} is already registered.")


def find_user(username: str) -> User | None:
    """Return the user with this username (case-insensitive), if any."""
    if "\x00" in username:  # no name has one, and PostgreSQL refuses NUL in a query (a 500)
        return None
    return db.session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    ).first()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).rstrip(b"=").decode("ascii")


@lru_cache(maxsize=4)
def _stand_in_hash(time_cost: int, memory_kib: int) -> str:
    """A well-formed argon2id hash of no password, with the configured parameters.

    A login for an unknown user verifies against it, which costs exactly what verifying a
    real user's hash costs (the cost is set by the parameters, not by the salt or digest),
    and building it costs nothing: unknown and known users take the same time.
    """
    hasher = _hasher_for(time_cost, memory_kib)
    salt, digest = _b64(os.urandom(hasher.salt_len)), _b64(os.urandom(hasher.hash_len))
    parameters = f"m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
    return f"$argon2id$v={ARGON2_VERSION}${parameters}${salt}${digest}"


def authenticate(username: str, password: str, *, cost: PasswordCost | None = None) -> User:
    """Return the user whose password this is, upgrading its hash if `cost` (by default the
    app's) changed.

    One argon2 verification whether the user exists or not, so timing reveals nothing.
    """
    user = find_user(username) if len(username) <= 32 else None
    cost = cost or password_cost()
    hasher, stand_in = _hasher_for(*cost), _stand_in_hash(*cost)
    try:
        off_the_loop(hasher.verify, user.password_hash if user else stand_in, password)
    except (VerificationError, InvalidHashError):
        user = None
    password_checked.send(authenticate, ok=user is not None)
    if user is None:
        security_event("login.failed", username=username[:64])
        raise AuthenticationError("Wrong username or password.")
    security_event("login.succeeded", user=user.username)
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password, cost)
        db.session.commit()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue_token(user: User, *, ttl: timedelta | None = None) -> tuple[str, datetime]:
    """Create an API token for `user` living `ttl` (by default TOKEN_TTL_SECONDS); return it
    (shown once, stored only hashed) and its expiry."""
    token = secrets.token_urlsafe(32)
    ttl = timedelta(seconds=app_settings()["TOKEN_TTL_SECONDS"]) if ttl is None else ttl
    expires_at = utcnow() + ttl
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), expires_at=expires_at))
    db.session.commit()
    return token, expires_at


_USERS, _TOKENS = User.__table__, ApiToken.__table__
# What a request authenticated by a token needs of its user: never the password hash,
# which would otherwise sit in every process's cache and in Redis.
TOKEN_USER_COLUMNS = ("id", "username", "email", "is_admin", "created_at", "locale", "time_zone")
# Built once: the hot path of every API request. Core, not ORM loading, keeps it cheap.
_USER_FOR_TOKEN = (
    select(
        *(_USERS.c[name] for name in TOKEN_USER_COLUMNS),
        _TOKENS.c.expires_at.label("token_expires_at"),
        _TOKENS.c.id.label("token_id"),
    )
    .join(_TOKENS, _TOKENS.c.user_id == _USERS.c.id)
    .where(_TOKENS.c.token_hash == bindparam("digest"), _TOKENS.c.expires_at > bindparam("now"))
)


def _load_lookup(data: dict[str, Any]) -> dict[str, Any]:
    times = {key: datetime.fromisoformat(data[key]) for key in ("created_at", "token_expires_at")}
    return {**data, **times}


# A token lookup in the shared tier: JSON, with its two timestamps parsed back.
_LOOKUP_CODEC: Codec[dict[str, Any]] = Codec(dump=dict, load=_load_lookup)
_OWNER = select(_TOKENS.c.user_id).where(_TOKENS.c.token_hash == bindparam("digest"))


def auth_scope(user_id: str) -> str:
    """The cache scope of a user's token lookups: bumped when the user or a token of theirs
    changes (one user's change of language leaves every other user's lookups cached)."""
    return f"auth:{user_id}"


def token_scope(digest: str) -> str:
    """The cache scope of one token's owner: bumped when a token with that digest is
    issued or deleted (a lookup of an unknown token is cached too)."""
    return f"token:{digest}"


track(auth_scope, User.id, read=TOKEN_USER_COLUMNS)
track(auth_scope, ApiToken.user_id)
track(token_scope, ApiToken.token_hash)


def user_for_token(token: str) -> User | None:
    """Return the user a live token belongs to, or None (unknown, expired or revoked)."""
    found = authenticate_token(token)
    return None if found is None else found[0]


def token_user_id(token: str) -> str | None:
    """The id of the user a live token belongs to, or None: `user_for_token` without
    building the user (the rate limits' key on every API write)."""
    found = _live_token(token)
    return None if found is None else str(found["id"])


def authenticate_token(token: str) -> tuple[User, str] | None:
    """The user a live token belongs to and the token's id, or None.

    The user comes back detached, with TOKEN_USER_COLUMNS only: read-only for the request,
    never inserted again.
    """
    found = _live_token(token)
    if found is None:
        return None
    fields = {name: found[name] for name in TOKEN_USER_COLUMNS}
    user = User(**fields)
    make_transient_to_detached(user)
    return user, found["token_id"]


def _live_token(token: str) -> dict[str, Any] | None:
    """The lookup of a live token (its user's TOKEN_USER_COLUMNS, its id and expiry), or None.

    Lookups are cached, unknown tokens too (a flood of made-up tokens does not reach
    the database), under the scopes of the token and of its owner: the owner (a token's
    never changes) is looked up, and cached, first, so that the owner's scope is read
    before the lookup it covers.
    """
    if not token or len(token) > 256:
        return None
    digest, now = _digest(token), utcnow()
    found = memoize(
        f"token:{digest}",
        lambda: _token_scopes(digest),
        lambda: None if _owner(digest) is None else _lookup(digest, now),
        _LOOKUP_CODEC,
    )
    if found is None or found["token_expires_at"] <= now:
        return None
    replay.until(found["token_expires_at"])
    return found


def _owner(digest: str) -> str | None:
    """The id of the user the token with this digest belongs to, if any (cached)."""
    read = db.session.connection().execute
    return memoize(
        f"owner:{digest}", [token_scope(digest)], lambda: read(_OWNER, {"digest": digest}).scalar()
    )


def _token_scopes(digest: str) -> list[str]:
    """The scopes of a token's lookup: its own, and its owner's when it has one."""
    owner = _owner(digest)
    return [token_scope(digest)] if owner is None else [token_scope(digest), auth_scope(owner)]


def _lookup(digest: str, now: datetime) -> dict[str, Any] | None:
    row = db.session.connection().execute(_USER_FOR_TOKEN, {"digest": digest, "now": now}).first()
    return None if row is None else dict(row._mapping)


def revoke_token(token: str) -> None:
    """Delete the token: it stops working everywhere at once."""
    row = db.session.execute(
        delete(ApiToken).where(ApiToken.token_hash == _digest(token)).returning(ApiToken.user_id)
    ).first()
    db.session.commit()  # bumps its owner's scope: no process accepts it from its cache
    if row is not None:
        tokens_revoked.send(revoke_token, user_id=row[0])


def purge_expired_tokens(now: datetime | None = None) -> int:
    """Delete expired tokens (beat's purge runs it); return how many."""
    return delete_in_batches(_TOKENS, _TOKENS.c.expires_at <= (now or utcnow()))
