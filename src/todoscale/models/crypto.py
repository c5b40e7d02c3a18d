"""Encryption at rest of todo notes: cryptography's MultiFernet, keyed by
TODOSCALE_ENCRYPTION_KEYS (the first key encrypts, every key decrypts).

A sealed note is stored as `enc1:` and a Fernet token (AES-128-CBC with HMAC-SHA256,
authenticated, with a fresh IV each time); a note without the prefix was stored while
encryption was off and is read as it is, so encryption can be turned on for a running
database and `todoscale keys rotate` seals the rest. Empty notes stay empty.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app, has_app_context
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from todoscale.config import ConfigurationError

EXTENSION = "todoscale.crypto"
PREFIX = "enc1:"
HOW_TO_MAKE_A_KEY = (
    "make one with: python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'"
)


def generate_key() -> str:
    """A new random Fernet key."""
    return Fernet.generate_key().decode("ascii")


class Keys:
    """The configured keys: `primary` encrypts, `every` decrypts."""

    def __init__(self, keys: Sequence[str]) -> None:
        try:
            fernets = [Fernet(key.encode("ascii")) for key in keys]
        except (ValueError, UnicodeEncodeError) as exc:
            raise ConfigurationError(
                f"TODOSCALE_ENCRYPTION_KEYS holds a key that is not a Fernet key ({exc}); "
                + HOW_TO_MAKE_A_KEY
            ) from exc
        self.primary = fernets[0]
        self.every = MultiFernet(fernets)


def keys() -> Keys | None:
    """This app's keys, or None when notes are stored as they are."""
    if not has_app_context():
        return None
    found: Keys | None = current_app.extensions.get(EXTENSION)
    return found


def seal(text: str, with_keys: Keys | None = None) -> str:
    """`text` as stored: sealed with the primary key when encryption is on, else unchanged."""
    chosen = with_keys or keys()
    if chosen is None or not text:
        return text
    return PREFIX + chosen.primary.encrypt(text.encode("utf-8")).decode("ascii")


class NotesUnreadable(RuntimeError):
    """A sealed note that no configured key opens."""


def unseal(stored: str, with_keys: Keys | None = None) -> str:
    """The text of a stored note (sealed or not)."""
    if not stored.startswith(PREFIX):
        return stored
    chosen = with_keys or keys()
    if chosen is None:
        raise NotesUnreadable(
            "A todo's notes are encrypted but TODOSCALE_ENCRYPTION_KEYS is not set; set it to "
            "the keys the notes were sealed with."
        )
    try:
        return chosen.every.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise NotesUnreadable(
            "A todo's notes were sealed with a key that is not in TODOSCALE_ENCRYPTION_KEYS; "
            "add the old key after the new one."
        ) from exc


def reseal(stored: str, with_keys: Keys) -> str | None:
    """`stored` sealed with the primary key, or None when it already is (or is empty)."""
    if not stored:
        return None
    if not stored.startswith(PREFIX):
        return seal(stored, with_keys)
    token = stored[len(PREFIX) :].encode("ascii")
    try:
        with_keys.primary.decrypt(token)
        return None
    except InvalidToken:
        return PREFIX + with_keys.every.rotate(token).decode("ascii")


class SealedText(TypeDecorator[str]):
    """Text sealed on the way in and opened on the way out, for ORM and Core alike."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else unseal(value)


@functools.lru_cache(maxsize=8)
def _keys_of(setting: tuple[str, ...]) -> Keys:
    return Keys(setting)


def init_app(app: Flask) -> None:
    """Check TODOSCALE_ENCRYPTION_KEYS and keep the keys it names (none: encryption off)."""
    setting = tuple(app.config.get("ENCRYPTION_KEYS") or ())
    app.extensions[EXTENSION] = _keys_of(setting) if setting else None
