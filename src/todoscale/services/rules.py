"""Value rules shared by every adapter (API schemas, web forms, CLI): one definition each."""

from __future__ import annotations

import re
from datetime import datetime

from todoscale.exceptions import ValidationError

USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{3,32}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
TITLE_MAX = 500
NAME_MAX = 200
NOTES_MAX = 10_000

_USERNAME = re.compile(USERNAME_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)


def check_text(field: str, value: str, *, maximum: int, trim: bool, minimum: int = 1) -> str:
    """Return `value` (trimmed if asked) or raise ValidationError naming `field`."""
    if "\x00" in value:
        raise ValidationError({field: ["must not contain NUL characters"]})
    if trim:
        value = value.strip()
    if len(value) < minimum:
        raise ValidationError({field: ["must not be empty" if minimum == 1 else
                                       f"must be at least {minimum} characters"]})
    if len(value) > maximum:
        raise ValidationError({field: [f"must be at most {maximum} characters"]})
    return value


def check_title(title: str) -> str:
    """A todo title: 1-500 characters after trimming."""
    return check_text("title", title, maximum=TITLE_MAX, trim=True)


def check_list_name(name: str) -> str:
    """A list name: 1-200 characters after trimming."""
    return check_text("name", name, maximum=NAME_MAX, trim=True)


def check_notes(notes: str) -> str:
    """Notes are kept exactly as given, up to 10,000 characters."""
    return check_text("notes", notes, maximum=NOTES_MAX, trim=False, minimum=0)


def check_due_at(due_at: datetime | None) -> datetime | None:
    """A due date must carry a time zone: a naive time means nothing to a shared list."""
    if due_at is not None and due_at.tzinfo is None:
        raise ValidationError({"due_at": ["must include a time zone offset, e.g. 'Z'"]})
    return due_at


def check_registration(username: str, email: str, password: str) -> tuple[str, str]:
    """Return the username and normalised email, or raise with every field at fault."""
    errors: dict[str, list[str]] = {}
    if not _USERNAME.match(username):
        errors["username"] = ["must be 3-32 characters of letters, digits, '_', '.', '-'"]
    email = email.strip().lower()
    if len(email) > 254 or "\x00" in email or not _EMAIL.match(email):
        errors["email"] = ["must be an email address"]
    if len(password) < PASSWORD_MIN:
        errors["password"] = [f"must be at least {PASSWORD_MIN} characters"]
    elif len(password) > PASSWORD_MAX or "\x00" in password:
        errors["password"] = [f"must be at most {PASSWORD_MAX} characters, without NUL"]
    if errors:
        raise ValidationError(errors)
    return username, email
