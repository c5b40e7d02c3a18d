"""Users and their API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from todoscale.extensions import db
from todoscale.models.base import UTCDateTime, new_id, utcnow


class User(db.Model):  # type: ignore[name-defined]
    """A person who owns lists and todos. Usernames and emails are unique, case-insensitively."""

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_username_lower", func.lower("username"), unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(32), nullable=False)
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # The language the user chose for the web UI (`en`, `zh_Hans`); None: follow the browser.
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The IANA time zone the web UI shows and takes times in; None: the browser's.
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ApiToken(db.Model):  # type: ignore[name-defined]
    """A bearer token. Only its SHA-256 is stored; revoking deletes the row."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    # Coarse: written at most once per TOKEN_LAST_USED_SECONDS (services.tokens).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
