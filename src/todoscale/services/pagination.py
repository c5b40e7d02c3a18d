"""Opaque keyset cursors: the (created_at, id) of the last item a page showed."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson

from todoscale.exceptions import BadRequestError

_BAD_CURSOR = "The cursor is not one this server issued; start again without it."


# Longer than any cursor this server issues (a time and an id of at most 64 characters).
CURSOR_MAX = 200


def encode_cursor(created_at: datetime, item_id: str) -> str:
    """Return the cursor that continues after the item (created_at, item_id)."""
    raw = orjson.dumps([created_at.isoformat(timespec="microseconds"), item_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Return the (created_at, id) a cursor names, or raise BadRequestError."""
    if len(cursor) > CURSOR_MAX:
        raise BadRequestError(_BAD_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, item_id = orjson.loads(raw)
        when = datetime.fromisoformat(created)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise BadRequestError(_BAD_CURSOR) from exc
    if when.tzinfo is None or not isinstance(item_id, str) or len(item_id) > 64:
        raise BadRequestError(_BAD_CURSOR)
    if "\x00" in item_id:  # never in an id we issue, and PostgreSQL refuses it (a 500)
        raise BadRequestError(_BAD_CURSOR)
    return when, item_id
