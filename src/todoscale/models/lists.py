"""Todo lists and who may use them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from todoscale.extensions import db
from todoscale.models.base import UTCDateTime, new_id, utcnow
from todoscale.models.users import User

OWNER = "owner"
MEMBER = "member"


class TodoList(db.Model):  # type: ignore[name-defined]
    """A named list of todos, owned by one user and shared with members."""

    __tablename__ = "lists"
    __table_args__ = (
        # At most one default list (the Inbox) per owner.
        Index(
            "uq_lists_default_per_owner",
            "owner_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    owner: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class Membership(db.Model):  # type: ignore[name-defined]
    """Who can see a list. The owner has a row too, so one join answers every visibility check."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_user_id", "user_id", "list_id"),)

    list_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False, default=MEMBER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    # Lets the unit of work insert a new list before its memberships.
    todo_list: Mapped[TodoList] = relationship(lazy="select")
