"""Export and import formats: a list's (or a user's) todos as CSV or JSON, and back.

Both formats carry the same fields, times in RFC 3339 UTC with `Z`. An import reads a file
as an export wrote it (`import_files` streams its rows); every row is checked with the rules
the API applies, and a file with any bad row is refused whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select

from todoscale.exceptions import ValidationError
from todoscale.extensions import db
from todoscale.models import Membership, Todo, TodoList
from todoscale.services.rules import check_due_at, check_notes, check_time, check_title

CSV = "csv"
JSON = "json"
FORMATS = (CSV, JSON)
CONTENT_TYPES = {CSV: "text/csv; charset=utf-8", JSON: "application/json"}

# The exported fields, in file order; `list` is the list's name (informative on import).
FIELDS = (
    "list",
    "title",
    "notes",
    "completed",
    "completed_at",
    "due_at",
    "created_at",
    "updated_at",
)
_TIMES = ("completed_at", "due_at", "created_at", "updated_at")
# The fields people write; the others (completion, times) the export writes itself.
TEXT_FIELDS = ("list", "title", "notes")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
# Injection"). A CSV export writes such a cell with a `'` in front, which makes it text, and
# an import takes that `'` off again; a cell that really starts with `'` gets a second one,
# so every value comes back exactly.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TEXT_MARK = "'"
# How many failing rows an import's error names before it just counts the rest.
MAX_NAMED_ROWS = 20

NOT_AN_EXPORT = (
    "The file is not a todoscale export: expected a CSV file whose header row names "
    f"'title' and only these columns: {', '.join(FIELDS)}; or a JSON object "
    '{"todos": [...]}.'
)


def neutralise_cell(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs: see `_FORMULA_STARTS`."""
    return _TEXT_MARK + value if value.startswith((*_FORMULA_STARTS, _TEXT_MARK)) else value


def restore_cell(value: str) -> str:
    """The value a CSV export's cell was written from (`neutralise_cell` undone)."""
    return value[1:] if value.startswith(_TEXT_MARK) else value


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def export_rows(user_id: str, list_id: str | None = None) -> list[dict[str, Any]]:
    """Every todo of `list_id` (or of every list `user_id` can see), as export rows.

    The caller has checked that the user may see `list_id`; rows are ordered by list name,
    then oldest first.
    """
    query = (
        select(TodoList.name, Todo)
        .join(Todo, Todo.list_id == TodoList.id)
        .join(Membership, Membership.list_id == TodoList.id)
        .where(Membership.user_id == user_id)
        .order_by(TodoList.name, TodoList.id, Todo.created_at, Todo.id)
    )
    if list_id is not None:
        query = query.where(TodoList.id == list_id)
    return [
        {
            "list": name,
            "title": todo.title,
            "notes": todo.notes,
            "completed": todo.completed,
            **{field: _time(getattr(todo, field)) for field in _TIMES},
        }
        for name, todo in db.session.execute(query)
    ]


def render(rows: Sequence[dict[str, Any]], fmt: str) -> bytes:
    """The export file of `rows` in `fmt` (UTF-8)."""
    if fmt == JSON:
        return orjson.dumps({"todos": list(rows)}, option=orjson.OPT_INDENT_2)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **row,
                **{field: neutralise_cell(row[field] or "") for field in TEXT_FIELDS},
                "completed": "true" if row["completed"] else "false",
                **{field: row[field] or "" for field in _TIMES},
            }
        )
    return out.getvalue().encode("utf-8")


@dataclass(frozen=True)
class CheckedRows:
    """The rows of an import ready to insert (without ids or list), or what is wrong."""

    rows: list[dict[str, Any]]
    errors: list[str]

    def error_text(self) -> str:
        """The failing rows, named: "row 3: title must not be empty; row 7: ..."."""
        return error_text(self.errors[:MAX_NAMED_ROWS], len(self.errors))


def error_text(named: Sequence[str], total: int) -> str:
    """`named` faults (the first rows') joined, and how many of `total` were left unnamed."""
    more = total - len(named)
    return "; ".join(named) + (f"; and {more} more rows" if more else "")


def check_row(raw: dict[str, Any], fmt: str, now: datetime) -> dict[str, Any]:
    """One imported row, checked with the API's rules; ValueError naming the first fault."""
    if "" in raw:
        raise ValueError("is not a row of an export (wrong number of columns or not an object)")
    unknown = set(raw) - set(FIELDS)
    if unknown:
        raise ValueError(f"has unknown fields: {', '.join(sorted(unknown))}")
    title, notes = raw.get("title"), raw.get("notes", "")
    if not isinstance(title, str):
        raise ValueError("title must be a string")
    if notes is None:
        notes = ""
    if not isinstance(notes, str):
        raise ValueError("notes must be a string")
    completed = _completed(raw.get("completed", False), fmt)
    try:
        times = {field: _parse_time(field, raw.get(field)) for field in _TIMES}
        row = {
            "title": check_title(title),
            "notes": check_notes(notes),
            "due_at": check_due_at(times["due_at"]),
        }
    except ValidationError as exc:
        field, messages = next(iter(exc.errors.items()))
        raise ValueError(f"{field} {messages[0]}") from exc
    created = times["created_at"] or now
    return {
        **row,
        "completed": completed,
        "completed_at": (times["completed_at"] or now) if completed else None,
        "created_at": created,
        "updated_at": times["updated_at"] or created,
    }


def _completed(value: Any, fmt: str) -> bool:
    if fmt == CSV and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false", ""):
            return lowered == "true"
    elif isinstance(value, bool):
        return value
    raise ValueError("completed must be true or false")


def _parse_time(field: str, value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    problem = f"{field} is not an RFC 3339 time with a zone, e.g. 2026-11-22T08:15:00Z"
    if not isinstance(value, str):
        raise ValueError(problem)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(problem) from exc
    if parsed.tzinfo is None:
        raise ValueError(problem)
    return check_time(field, parsed)  # ValidationError past the range (no OverflowError)


def check_rows(
    raws: Iterable[dict[str, Any]], fmt: str, now: datetime, *, first: int = 1
) -> CheckedRows:
    """Check every row, numbered from `first` (the header not counted); collect all faults."""
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for number, raw in enumerate(raws, start=first):
        try:
            rows.append(check_row(raw, fmt, now))
        except ValueError as exc:
            errors.append(f"row {number}: {exc}")
    return CheckedRows(rows, errors)
