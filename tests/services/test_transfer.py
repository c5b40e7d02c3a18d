"""services.transfer: the export formats, read back and checked row by row."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import orjson
import pytest

from todoscale.services import import_files, transfer

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ROWS = [
    {
        "list": "Home, sweet",
        "title": 'Say "hi"',
        "notes": "line one\nline two, with comma",
        "completed": True,
        "completed_at": "2026-01-02T03:04:05.123456Z",
        "due_at": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T03:04:05.123456Z",
    },
    {
        "list": "Home, sweet",
        "title": "中文 ✓",
        "notes": "",
        "completed": False,
        "completed_at": None,
        "due_at": "2026-12-24T08:00:00Z",
        "created_at": "2026-01-01T00:00:01Z",
        "updated_at": "2026-01-01T00:00:01Z",
    },
]


def parse(data: bytes) -> tuple[str, list[dict[str, object]]]:
    """The format and every raw row of a file (import_files streams them; here, all at once)."""
    fmt, rows = import_files.read_rows(data)
    return fmt, list(rows)


@pytest.mark.parametrize("fmt", transfer.FORMATS)
def test_a_rendered_file_parses_back_to_the_same_rows(fmt):
    found_format, raws = parse(transfer.render(ROWS, fmt))

    checked = transfer.check_rows(raws, found_format, NOW)

    assert found_format == fmt
    assert checked.errors == []
    assert [row["title"] for row in checked.rows] == ['Say "hi"', "中文 ✓"]
    assert checked.rows[0]["notes"] == "line one\nline two, with comma"
    assert checked.rows[0]["completed_at"] == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert checked.rows[1]["due_at"] == datetime(2026, 12, 24, 8, tzinfo=UTC)
    assert checked.rows[1]["completed_at"] is None


def test_csv_has_a_header_row_and_json_a_todos_array():
    csv_text = transfer.render(ROWS, "csv").decode()
    assert csv_text.splitlines()[0] == ",".join(transfer.FIELDS)
    assert csv_text.splitlines()[1].startswith('"Home, sweet","Say ""hi""",')
    assert orjson.loads(transfer.render(ROWS, "json")) == {"todos": ROWS}


def test_only_title_is_required_and_missing_times_default():
    _fmt, raws = parse(b"title,completed\nDone,true\nOpen,\n")

    done, open_ = transfer.check_rows(raws, "csv", NOW).rows

    assert done == {
        "title": "Done",
        "notes": "",
        "due_at": None,
        "completed": True,
        "completed_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    assert (open_["completed"], open_["completed_at"]) == (False, None)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"title": ""}, "title must not be empty"),
        ({"title": "x" * 501}, "title must be at most 500 characters"),
        ({"title": 5}, "title must be a string"),
        ({"notes": "x"}, "title must be a string"),
        ({"title": "a", "notes": "n" * 10_001}, "notes must be at most 10000 characters"),
        ({"title": "a", "completed": "yes"}, "completed must be true or false"),
        ({"title": "a", "due_at": "2026-12-24T08:00:00"}, "due_at is not an RFC 3339"),
        ({"title": "a", "created_at": 17}, "created_at is not an RFC 3339"),
        ({"title": "a", "colour": "red"}, "has unknown fields: colour"),
        (
            {"title": "a", "due_at": "9999-12-31T23:00:00-05:00"},
            "due_at must be between 0001-01-02 and 9999-12-30 (UTC)",
        ),
        (
            {"title": "a", "created_at": "9999-12-31T23:00:00-05:00"},
            "created_at must be between 0001-01-02 and 9999-12-30 (UTC)",
        ),
        ({"": 3}, "is not a row of an export"),
    ],
)
def test_each_rule_names_its_field(raw, error):
    checked = transfer.check_rows([raw], "json", NOW, first=7)

    assert checked.rows == []
    assert len(checked.errors) == 1
    assert checked.errors[0].startswith(f"row 7: {error}")


def test_a_long_list_of_errors_names_the_first_rows_and_counts_the_rest():
    checked = transfer.check_rows([{"title": ""}] * 25, "json", NOW)

    text = checked.error_text()

    assert text.startswith("row 1: title must not be empty; row 2: ")
    assert "row 20:" in text and "row 21:" not in text
    assert text.endswith("; and 5 more rows")


def test_a_csv_row_with_the_wrong_number_of_columns_is_named():
    _fmt, raws = parse(b"title,notes\nok,fine\nextra,one,two\n")

    checked = transfer.check_rows(raws, "csv", NOW)

    assert [row["title"] for row in checked.rows] == ["ok"]
    assert checked.errors == [
        "row 2: is not a row of an export (wrong number of columns or not an object)"
    ]


FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "'quoted", "''twice", "plain"]


def test_csv_cells_a_spreadsheet_would_run_are_written_as_text():
    rows = [
        {**ROWS[1], "list": formula, "title": formula, "notes": formula} for formula in FORMULAS
    ]
    rows.append({**ROWS[1], "title": "tab", "notes": "\tindented"})
    rows.append({**ROWS[1], "title": "cr", "notes": "\rreturn"})

    lines = list(csv.reader(io.StringIO(transfer.render(rows, "csv").decode(), newline="")))

    written = ['\'=HYPERLINK("http://x")', "'+1+1", "'-2", "'@SUM(A1)", "''quoted", "'''twice"]
    assert [line[:3] for line in lines[1:8]] == [[cell] * 3 for cell in [*written, "plain"]]
    assert [line[2] for line in lines[8:]] == ["'\tindented", "'\rreturn"]
    # The fields the export writes itself (completion, times) never start so: left alone.
    assert lines[1][3:] == ["false", "", "2026-12-24T08:00:00Z", *[ROWS[1]["created_at"]] * 2]


def test_a_csv_export_imports_back_exactly_whatever_its_cells_start_with():
    rows = [{**ROWS[1], "title": formula, "notes": formula} for formula in FORMULAS]
    rows.append({**ROWS[1], "title": "tab", "notes": "\tindented"})

    fmt, raws = parse(transfer.render(rows, "csv"))
    checked = transfer.check_rows(raws, fmt, NOW)

    assert checked.errors == []
    assert [(row["title"], row["notes"]) for row in checked.rows] == [
        (row["title"], row["notes"]) for row in rows
    ]
