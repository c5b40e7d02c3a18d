"""Deleting many rows in short transactions: what the retention purges share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select

from todoscale.extensions import db

# Rows per transaction: a purge of a million rows never holds SQLite's write lock for long.
BATCH = 1_000


def delete_in_batches(table: Table, condition: ColumnElement[Any]) -> int:
    """Delete the rows of `table` (keyed by `id`) that meet `condition`, BATCH rows per
    committed transaction; return how many."""
    batch, total = BATCH, 0
    while True:
        ids = list(db.session.scalars(select(table.c.id).where(condition).limit(batch)))
        if not ids:
            db.session.rollback()  # the last look was a read: hold no snapshot
            return total
        db.session.execute(delete(table).where(table.c.id.in_(ids), condition))
        db.session.commit()
        total += len(ids)
