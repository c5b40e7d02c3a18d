"""Browser sessions, kept on the server so that ending one takes effect at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from todoscale.extensions import db
from todoscale.models.base import UTCDateTime, new_id, utcnow
from todoscale.models.users import User


class WebSession(db.Model):  # type: ignore[name-defined]
    """One browser's session. The cookie holds a random token; only its SHA-256 is stored.

    `user_id` is None until the browser logs in; `data` is the session dictionary
    (CSRF token, flashed messages) serialized as tagged JSON.
    """

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    user_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    data: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, index=True
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, index=True
    )

    user: Mapped[User | None] = relationship(lazy="joined")
