"""Background jobs (exports, imports) and in-app notifications (due-date reminders)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from todoscale.extensions import db
from todoscale.models.base import UTCDateTime, new_id, utcnow

EXPORT = "export"
IMPORT = "import"

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
FINISHED = (SUCCEEDED, FAILED)


class Job(db.Model):  # type: ignore[name-defined]
    """One piece of slow work a user asked for, and the record of how it went.

    The row is the source of truth, not the broker's message: a worker claims the job by a
    conditional UPDATE (queued, or running with an expired lease) and finishes it in the
    same transaction as its effect, so a lost or repeated message changes nothing.
    `payload` holds an import's uploaded file, `result` an export's file: both live in the
    database so any worker on any host can reach them.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        # The recovery sweep: jobs still queued or running, oldest lease first.
        Index("ix_jobs_status_lease", "status", "lease_until"),
        # The retention purge: jobs finished long enough ago.
        Index("ix_jobs_finished_at", "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=QUEUED)
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # JSON: {"format": "csv"|"json", "list_id": str|None, "filename": str}
    params: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    result: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    result_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    result_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Notification(db.Model):  # type: ignore[name-defined]
    """An in-app message to one user; today only due-date reminders.

    The unique constraint is the last guard of "once": one reminder per user, todo and
    due time, whatever the number of beat ticks or workers.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "kind", "todo_id", "due_at"),
        Index("ix_notifications_user_created", "user_id", "created_at"),
        # The retention purge: notifications made long enough ago, whoever's.
        Index("ix_notifications_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False, default="reminder")
    todo_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("todos.id", ondelete="CASCADE"), nullable=True, index=True
    )
    list_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    title: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
