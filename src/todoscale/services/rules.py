"""Value rules shared by every adapter (API schemas, web forms, CLI): one definition each."""

from __future__ import annotations

import functools
import gzip
import re
from datetime import UTC, datetime
from importlib import resources

import pytz

from todoscale.exceptions import ValidationError

# Anchored for the OpenAPI document (JSON Schema); Python checks them with `fullmatch`,
# since `$` alone also matches before a final newline ("alice\n" would pass as "alice").
USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{3,32}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
TITLE_MAX = 500
NAME_MAX = 200
NOTES_MAX = 10_000

# Django's list of the 20,000 most common passwords, lowercased (see its .LICENSE beside it;
# `make vendor` refetches it).
COMMON_PASSWORDS = "data/common-passwords.txt.gz"

# The languages of the web UI; the first is the default.
LOCALES = ("en", "zh_Hans")

_USERNAME = re.compile(USERNAME_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)


class Message(str):
    """A rule's message in English that keeps its template and values.

    It is a plain string to the API (which answers in English); the web UI looks the
    template up in its catalogs and fills in the values, so a rule's wording lives here only.
    """

    template: str
    values: dict[str, int]

    def __new__(cls, template: str, **values: int) -> Message:
        message = super().__new__(cls, template % values if values else template)
        message.template = template
        message.values = values
        return message


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled common passwords long enough to pass the other rules (ASVS 6.2.4)."""
    raw = resources.files(__package__).joinpath(COMMON_PASSWORDS).read_bytes()
    words = gzip.decompress(raw).decode("utf-8").splitlines()
    return frozenset(word for word in words if len(word) >= PASSWORD_MIN)


def check_password(password: str, field: str = "password") -> str:
    """A password: 8-1,024 characters, without NUL, and not a common one.

    Any characters are allowed and none is required: length and the common-password list are
    the whole policy (NIST SP 800-63B, ASVS 6.2). The list is compared case-insensitively.
    """
    if len(password) < PASSWORD_MIN:
        raise ValidationError(
            {field: [Message("must be at least %(minimum)d characters", minimum=PASSWORD_MIN)]}
        )
    if len(password) > PASSWORD_MAX or "\x00" in password:
        raise ValidationError(
            {
                field: [
                    Message(
                        "must be at most %(maximum)d characters, without NUL", maximum=PASSWORD_MAX
                    )
                ]
            }
        )
    if password.strip().lower() in common_passwords():
        raise ValidationError(
            {field: [Message("is one of the most common passwords; choose one less easy to guess")]}
        )
    return password


def check_locale(locale: str) -> str:
    """A language the web UI speaks."""
    if locale not in LOCALES:
        raise ValidationError({"locale": [Message("must be one of the offered languages")]})
    return locale


def check_time_zone(time_zone: str) -> str:
    """An IANA time zone name, as the tz database (pytz's, Flask-Babel's) knows it."""
    if time_zone not in pytz.all_timezones_set:
        raise ValidationError({"time_zone": [Message("must be a time zone such as Asia/Shanghai")]})
    return time_zone


def check_text(field: str, value: str, *, maximum: int, trim: bool, minimum: int = 1) -> str:
    """Return `value` (trimmed if asked) or raise ValidationError naming `field`."""
    if "\x00" in value:
        raise ValidationError({field: [Message("must not contain NUL characters")]})
    if trim:
        value = value.strip()
    if len(value) < minimum:
        raise ValidationError(
            {
                field: [
                    Message("must not be empty")
                    if minimum == 1
                    else Message("must be at least %(minimum)d characters", minimum=minimum)
                ]
            }
        )
    if len(value) > maximum:
        raise ValidationError(
            {field: [Message("must be at most %(maximum)d characters", maximum=maximum)]}
        )
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


# Due times stay a day inside the range of a datetime in UTC, so that every time zone
# (at most 14 hours from UTC) can show them: 9999-12-31T23:00-05:00 is past the end.
DUE_MIN = datetime(1, 1, 2, tzinfo=UTC)
DUE_MAX = datetime(9999, 12, 31, tzinfo=UTC)


def check_time(field: str, moment: datetime) -> datetime:
    """An aware time in UTC; ValidationError naming `field` if naive or past datetime's range."""
    if moment.tzinfo is None:
        raise ValidationError({field: [Message("must include a time zone offset, e.g. 'Z'")]})
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise _out_of_range(field) from exc


def _out_of_range(field: str) -> ValidationError:
    return ValidationError({field: [Message("must be between 0001-01-02 and 9999-12-30 (UTC)")]})


def check_due_at(due_at: datetime | None) -> datetime | None:
    """A due time: with a time zone (a naive time means nothing to a shared list), from
    0001-01-02 to 9999-12-30 in UTC; returned in UTC."""
    if due_at is None:
        return None
    due_at = check_time("due_at", due_at)
    if not DUE_MIN <= due_at < DUE_MAX:
        raise _out_of_range("due_at")
    return due_at


def check_registration(username: str, email: str, password: str) -> tuple[str, str]:
    """Return the username and normalised email, or raise with every field at fault."""
    errors: dict[str, list[str]] = {}
    if not _USERNAME.fullmatch(username):
        errors["username"] = [Message("must be 3-32 characters of letters, digits, '_', '.', '-'")]
    email = email.strip().lower()
    if len(email) > 254 or "\x00" in email or not _EMAIL.fullmatch(email):
        errors["email"] = [Message("must be an email address")]
    try:
        check_password(password)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return username, email
