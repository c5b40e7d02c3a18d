"""A failed job's error in the reader's language.

The job row keeps its error in English (the API's words, `JobRead.error`). The pages
split it into the rows it names ("row 3: title must not be empty; row 7: ...") and
translate each part by the shape of the English message; a message of unknown shape is
shown as it is, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from todoscale.services import transfer

# The exported fields as a reader knows them (the file's column names stay as they are).
_FIELDS = {
    "title": _l("title"),
    "notes": _l("notes"),
    "completed": _l("completed"),
    "completed_at": _l("completed at"),
    "due_at": _l("due date"),
    "created_at": _l("created at"),
    "updated_at": _l("updated at"),
}


def _field(name: str) -> str:
    return str(_FIELDS.get(name, name))


# English message shapes (services.transfer, services.rules, services.jobs) and their
# translations; each translation gets the regex's groups.
_Shape = tuple[re.Pattern[str], Callable[..., str]]
_PROBLEMS: list[_Shape] = [
    (
        re.compile(r"is not a row of an export \(wrong number of columns or not an object\)"),
        lambda: _("is not a row of an export (wrong number of columns, or not an object)"),
    ),
    (
        re.compile(r"has unknown fields: (.+)"),
        lambda names: _("has unknown fields: %(names)s", names=names),
    ),
    (re.compile(r"(\w+) must be a string"), lambda f: _("%(field)s must be text", field=_field(f))),
    (re.compile(r"completed must be true or false"), lambda: _("completed must be true or false")),
    (
        re.compile(r"(\w+) is not an RFC 3339 time with a zone, e\.g\. (\S+)"),
        lambda f, example: _(
            "%(field)s is not an RFC 3339 time with a zone, e.g. %(example)s",
            field=_field(f),
            example=example,
        ),
    ),
    (
        re.compile(r"(\w+) must not be empty"),
        lambda f: _("%(field)s must not be empty", field=_field(f)),
    ),
    (
        re.compile(r"(\w+) must be at most (\d+) characters"),
        lambda f, n: _(
            "%(field)s must be at most %(maximum)s characters", field=_field(f), maximum=n
        ),
    ),
    (
        re.compile(r"(\w+) must not contain NUL characters"),
        lambda f: _("%(field)s must not contain NUL characters", field=_field(f)),
    ),
    (
        re.compile(r"(\w+) must include a time zone offset, e\.g\. 'Z'"),
        lambda f: _("%(field)s must include a time zone offset, e.g. 'Z'", field=_field(f)),
    ),
]
_WHOLE: list[_Shape] = [
    (
        re.compile(re.escape(transfer.NOT_AN_EXPORT) + r"(?: \((.*)\))?"),
        lambda why=None: _(
            "The file is not a todoscale export: pick a CSV or JSON file that an export wrote."
        ),
    ),
    (
        re.compile(r"The list no longer exists, or you are no longer a member of it\."),
        lambda: _("The list no longer exists, or you are no longer a member of it."),
    ),
    (
        re.compile(r"Gave up after (\d+) attempts\."),
        lambda n: _("Gave up after %(count)s attempts.", count=n),
    ),
    (
        re.compile(r"Failed after (\d+) attempts: (.*)", re.DOTALL),
        lambda n, why: _("Failed after %(count)s attempts: %(reason)s", count=n, reason=why),
    ),
]
_ROW = re.compile(r"row (\d+): (.*)", re.DOTALL)
_MORE = re.compile(r"and (\d+) more rows")


def _translated(shapes: list[_Shape], text: str) -> str | None:
    for pattern, translate in shapes:
        match = pattern.fullmatch(text)
        if match:
            return translate(*(group for group in match.groups() if group is not None))
    return None


@dataclass(frozen=True)
class JobError:
    """A job's error for a page: a sentence, or the rows it names (with how many more)."""

    summary: str
    rows: list[str]


def translate_error(error: str) -> JobError:
    """`error` (a failed job's English text) in the request's language."""
    whole = _translated(_WHOLE, error)
    if whole is not None:
        return JobError(whole, [])
    rows: list[str] = []
    more = 0
    for part in error.split("; "):
        row, extra = _ROW.fullmatch(part), _MORE.fullmatch(part)
        if row:
            problem = _translated(_PROBLEMS, row.group(2)) or row.group(2)
            rows.append(_("Row %(number)s: %(problem)s", number=row.group(1), problem=problem))
        elif extra:
            more = int(extra.group(1))
        else:
            return JobError(error, [])  # not a list of rows: shown as it is
    if more:
        rows.append(ngettext("and %(num)d more row", "and %(num)d more rows", more))
    summary = ngettext(
        "%(num)d row of the file is not right, so nothing was imported:",
        "%(num)d rows of the file are not right, so nothing was imported:",
        len(rows) - (1 if more else 0) + more,
    )
    return JobError(summary, rows)
