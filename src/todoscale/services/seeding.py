"""The reference workload: many users and todos, written by bulk insert."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select

from todoscale.config.current import app_settings
from todoscale.exceptions import AccessDeniedError, ConflictError
from todoscale.extensions import db
from todoscale.models import OWNER, Membership, Todo, TodoList, User, new_id, utcnow
from todoscale.services.accounts import DEFAULT_LIST_NAME, hash_password

BATCH = 5_000


def seed(
    *, users: int, todos: int, password: str, prefix: str = "user", env_name: str | None = None
) -> list[str]:
    """Create `users` users (`<prefix>1`...) sharing one password, and `todos` todos spread
    round-robin over their Inboxes, newest last; return the usernames. One transaction.

    Refused in production (`env_name`, by default ENV_NAME): its users share one password
    that the command line shows.
    """
    if (app_settings()["ENV_NAME"] if env_name is None else env_name) == "production":
        raise AccessDeniedError(
            "todoscale seed refuses to run in production (TODOSCALE_ENV=production): its "
            "users share one known password. Seed a development or testing instance."
        )
    names = [f"{prefix}{n}" for n in range(1, users + 1)]
    taken = db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(func.lower(User.username).in_([name.lower() for name in names]))
    )
    if taken:
        raise ConflictError(f"Some of {names[0]}..{names[-1]} exist already; use --prefix.")
    password_hash = hash_password(password)  # one hash for all: argon2 is slow on purpose
    now = utcnow()
    user_rows, list_rows, member_rows = [], [], []
    for name in names:
        user_id, list_id = new_id(), new_id()
        user_rows.append(
            {
                "id": user_id,
                "username": name,
                "email": f"{name}@example.com",
                "password_hash": password_hash,
                "is_admin": False,
                "created_at": now,
            }
        )
        list_rows.append(
            {
                "id": list_id,
                "owner_id": user_id,
                "name": DEFAULT_LIST_NAME,
                "is_default": True,
                "created_at": now,
            }
        )
        member_rows.append(
            {"list_id": list_id, "user_id": user_id, "role": OWNER, "created_at": now}
        )
    if user_rows:
        db.session.execute(insert(User), user_rows)
        db.session.execute(insert(TodoList), list_rows)
        db.session.execute(insert(Membership), member_rows)
    for start in range(0, todos if list_rows else 0, BATCH):
        batch = []
        for n in range(start, min(start + BATCH, todos)):
            created = now - timedelta(seconds=todos - n)
            owner = list_rows[n % len(list_rows)]
            batch.append(
                {
                    "id": new_id(),
                    "list_id": owner["id"],
                    "creator_id": owner["owner_id"],
                    "title": f"Todo number {n + 1}",
                    "notes": "",
                    "completed": n % 5 == 0,
                    "completed_at": created if n % 5 == 0 else None,
                    "due_at": None,
                    "created_at": created,
                    "updated_at": created,
                    "version": 1,
                }
            )
        # Core's executemany on the table: the ORM's bulk path splits a batch into single-row
        # statements wherever its pattern of None values changes (completed_at here).
        db.session.execute(insert(Todo.__table__), batch)
    db.session.commit()
    return names
