"""Todos."""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import NamedTuple

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from todoscale.extensions import db
from todoscale.models import crypto
from todoscale.models.base import UTCDateTime, new_id, utcnow
from todoscale.models.crypto import SealedText


def notes_searchable() -> bool:
    """Whether notes written now may enter the search index: not when they are encrypted.

    With TODOSCALE_ENCRYPTION_KEYS set, notes are stored encrypted at rest; their
    ciphertext is never indexed, and search then covers titles only.
    """
    return crypto.keys() is None


class Todo(db.Model):  # type: ignore[name-defined]
    """One thing to do, in one list.

    `version` is SQLAlchemy's version counter: every UPDATE is conditional on it, so two
    writers that read the same version cannot both win (no lost updates).
    """

    __tablename__ = "todos"
    __table_args__ = (
        # The reference query: a list's newest todos, keyset-paged by (created_at, id).
        Index("ix_todos_list_created", "list_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    list_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("lists.id", ondelete="CASCADE"), nullable=False
    )
    creator_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    # Sealed with TODOSCALE_ENCRYPTION_KEYS when set (see models.crypto); a Text column still.
    notes: Mapped[str] = mapped_column(SealedText, nullable=False, default="")
    completed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # The due time a reminder went out for; a new due time earns a new reminder.
    reminded_for: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Whether the search index holds this row's notes (see `notes_searchable`). Set on every
    # INSERT and UPDATE, Core's bulk ones included (imports, seeding), by the column's own
    # default: no write path can forget it. The index itself follows in the database
    # (migration 0007): FTS5 triggers on SQLite, an expression GIN index on PostgreSQL.
    notes_searchable: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=notes_searchable,
        onupdate=notes_searchable,
        server_default=true(),
    )

    __mapper_args__ = {"version_id_col": version}


class TodoRow(NamedTuple):
    """A todo as a reader sees it, the one statement of its shape: these fields, this order.

    The read statements select exactly these columns (READ_COLUMNS), the cache stores rows
    as JSON arrays in this order, and the API's `TodoRead` is these fields and a `url`.
    Read by Core (no ORM loading), immutable, cacheable; the creator stays internal.
    """

    id: str
    list_id: str
    title: str
    notes: str
    completed: bool
    completed_at: datetime | None
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, todo: Todo) -> TodoRow:
        """What a reader sees of a loaded `todo`, as a row."""
        return cls._make(_READ(todo))


# One C-level call per todo (attrgetter of several names returns their tuple).
_READ = attrgetter(*TodoRow._fields)
# The columns a read selects, in TodoRow's order.
READ_COLUMNS = tuple(Todo.__table__.c[name] for name in TodoRow._fields)
