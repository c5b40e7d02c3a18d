"""Reading an import file as a stream: its format, its raw rows one at a time, their count.

Nothing here holds more than one row of a file in memory beside the file itself (a 10 MiB
file of five million tiny rows once took a process past a gigabyte). CSV streams through
the `csv` module; JSON through ijson's C parser (yajl), which builds one row at a time.
The format is told by the content (a JSON object, or a CSV header row), never by the file's
name. Rows are not checked here: see `transfer.check_row`.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import io
import itertools
from collections.abc import Iterator
from typing import Any

import ijson

from todoscale.exceptions import ValidationError
from todoscale.services.transfer import (
    CSV,
    FIELDS,
    JSON,
    NOT_AN_EXPORT,
    TEXT_FIELDS,
    restore_cell,
)

# Where the rows of a JSON export are: `{"todos": [row, ...]}`.
_JSON_ROWS = "todos.item"
# The start of a JSON export: an object whose first member is the `todos` array.
_JSON_START = [("", "start_map", None), ("", "map_key", "todos"), ("todos", "start_array", None)]
# A JSON file's first significant byte is looked for this far; past it, it is not JSON.
_SNIFF_BYTES = 4096


def not_an_export(why: str) -> ValidationError:
    """The error of a file that is not an export, saying why."""
    return ValidationError({"file": [f"{NOT_AN_EXPORT} ({why})"]}, detail=NOT_AN_EXPORT)


def too_many_rows(limit: int) -> ValidationError:
    """The error of a file with more rows than one import takes."""
    message = f"has more than {limit} rows, the most one import takes; split it into smaller files"
    return ValidationError({"file": [message]}, detail=f"The file {message}.")


def sniff(data: bytes) -> str:
    """JSON when the file's first significant character opens an object or array, else CSV."""
    head = data[:_SNIFF_BYTES].removeprefix(codecs.BOM_UTF8).lstrip()
    return JSON if head.startswith((b"{", b"[")) else CSV


def read_rows(data: bytes) -> tuple[str, Iterator[dict[str, Any]]]:
    """The format of an export file and its raw rows, read lazily.

    The start of the file is checked at once (ValidationError when it is not an export);
    what is malformed further on raises the same error when iteration reaches it.
    """
    fmt, header, values = _open(data)
    return fmt, _as_rows(header, values)


def count_rows(data: bytes, limit: int) -> tuple[str, int]:
    """Read the whole file and count its rows; ValidationError when it is not an export
    or holds more than `limit` rows (found as soon as row `limit + 1` is read).

    The counting runs in C (the parsers, `islice`, `zip`, a `deque` that keeps nothing):
    a request must not spend seconds on half a million one-letter rows.
    """
    fmt, _header, values = _open(data)
    counter = itertools.count()
    with _reading():
        collections.deque(zip(itertools.islice(values, limit + 1), counter, strict=False), maxlen=0)
    count = next(counter)
    if count > limit:
        raise too_many_rows(limit)
    return fmt, count


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """Turn the parsers' errors into the refusal of a file that is not an export."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise not_an_export("it is not UTF-8 text") from exc
    except csv.Error as exc:
        raise not_an_export(f"malformed CSV: {exc}") from exc
    except ijson.JSONError as exc:
        raise not_an_export(f"invalid JSON: {_first_line(exc)}") from exc


def _open(data: bytes) -> tuple[str, list[str] | None, Iterator[Any]]:
    """The format, the CSV header (None for JSON) and the raw values: CSV rows as lists of
    strings (empty lines skipped), JSON rows as the parser builds them."""
    with _reading():
        if sniff(data) == JSON:
            start = list(itertools.islice(ijson.parse(_json_stream(data)), len(_JSON_START)))
            if start != _JSON_START:
                raise not_an_export(
                    "a JSON file must be an object whose first member is a 'todos' array"
                )
            return JSON, None, ijson.items(_json_stream(data), _JSON_ROWS)
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        header = next(reader, None)
        if header is None or "title" not in header or not set(header) <= set(FIELDS):
            raise not_an_export("its first row is not an export's header")
        return CSV, header, filter(None, reader)


def _as_rows(header: list[str] | None, values: Iterator[Any]) -> Iterator[dict[str, Any]]:
    with _reading():
        for value in values:
            if header is None:
                yield value if isinstance(value, dict) else {"": value}
            elif len(value) != len(header):
                yield {"": value}  # the row check names it
            else:
                row = dict(zip(header, value, strict=True))
                for field in TEXT_FIELDS:
                    if field in row:
                        row[field] = restore_cell(row[field])
                yield row


def _json_stream(data: bytes) -> io.BytesIO:
    stream = io.BytesIO(data)  # shares `data`'s buffer: no copy
    stream.seek(len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
    return stream


def _first_line(exc: Exception) -> str:
    # yajl's messages go on with a copy of the text around the fault: the first line says it.
    message = exc.args[0] if exc.args else ""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    lines = str(message).strip().splitlines()
    return lines[0] if lines else "malformed"
