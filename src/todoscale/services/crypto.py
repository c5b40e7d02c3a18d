"""Encryption at rest of todo notes, as the use cases see it: whether it is on, and rotation."""

from __future__ import annotations

from sqlalchemy import Text, select, type_coerce, update

from todoscale.extensions import db
from todoscale.models import Todo
from todoscale.models import crypto as sealing

ROTATE_BATCH = 500
_TODOS = Todo.__table__
# The notes as stored (sealed or not): SealedText's processing bypassed.
stored_notes = type_coerce(_TODOS.c.notes, Text())


def encryption_enabled() -> bool:
    """True when todo notes are stored encrypted (TODOSCALE_ENCRYPTION_KEYS is set).

    Then the database holds no plaintext notes to search: a search covers titles only.
    """
    return sealing.keys() is not None


def rotate_notes(batch_size: int = ROTATE_BATCH) -> int:
    """Seal every todo's notes with the first key (plain ones too); return how many changed.

    Runs while the service serves: batches in id order, each committed on its own (no long
    lock), and a note edited meanwhile is left to its writer (the UPDATE matches the
    stored value it read). Notes already sealed with the first key are not rewritten.
    """
    keys = sealing.keys()
    if keys is None:
        raise ValueError("TODOSCALE_ENCRYPTION_KEYS is not set: there is no key to seal with.")
    changed, after = 0, ""
    while True:
        rows = db.session.execute(
            select(_TODOS.c.id, stored_notes)
            .where(_TODOS.c.id > after, stored_notes != "")
            .order_by(_TODOS.c.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return changed
        for todo_id, stored in rows:
            sealed = sealing.reseal(stored, keys)
            if sealed is not None:
                result = db.session.execute(
                    update(_TODOS)
                    .where(_TODOS.c.id == todo_id, stored_notes == stored)
                    .values({_TODOS.c.notes: type_coerce(sealed, Text())})
                )
                changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        db.session.commit()  # one batch: readers and writers go on between batches
        after = rows[-1][0]
