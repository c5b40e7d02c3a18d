"""web.job_errors: every fault an import can name, in Chinese; unknown text left as it is."""

from __future__ import annotations

from flask import Flask
from flask_babel import force_locale

from todoscale.models import utcnow
from todoscale.services import transfer
from todoscale.web.job_errors import translate_error

# One bad row of each kind the import's row check knows.
BAD_ROWS = [
    ("json", {"": 1}),
    ("json", {"title": "x", "colour": "red"}),
    ("json", {"title": 3}),
    ("json", {"title": "x", "notes": 3}),
    ("json", {"title": "x", "completed": "maybe"}),
    ("csv", {"title": "x", "completed": "maybe"}),
    ("json", {"title": "x", "due_at": "tomorrow"}),
    ("json", {"title": "x", "created_at": "2026-11-22T08:15:00"}),
    ("json", {"title": "   "}),
    ("json", {"title": "x" * 501}),
    ("json", {"title": "x", "notes": "n" * 10_001}),
    ("json", {"title": "a\\x00b".replace("\\x00", "\x00")}),
]


def test_every_fault_of_an_import_row_is_translated(app: Flask):
    errors = []
    for fmt, raw in BAD_ROWS:
        checked = transfer.check_rows([raw], fmt, utcnow(), first=7)
        assert checked.errors, raw
        errors += checked.errors
    text = transfer.CheckedRows([], errors).error_text()
    with app.test_request_context(), force_locale("zh_Hans"):
        shown = translate_error(text)
    assert len(shown.rows) == transfer.MAX_NAMED_ROWS or len(shown.rows) == len(BAD_ROWS)
    for row, english in zip(shown.rows, errors, strict=False):
        problem = english.split(": ", 1)[1]
        assert row.startswith("第 7 行") and problem not in row, (row, english)
    assert shown.summary.startswith(f"文件中有 {len(BAD_ROWS)} 行不正确")


def test_many_bad_rows_end_with_how_many_more(app: Flask):
    errors = [f"row {n}: title must not be empty" for n in range(1, 31)]
    with app.test_request_context():
        shown = translate_error(transfer.CheckedRows([], errors).error_text())
    assert shown.rows[-1] == "and 10 more rows" and len(shown.rows) == 21
    assert shown.summary == "30 rows of the file are not right, so nothing was imported:"


def test_an_error_of_unknown_shape_is_shown_as_it_is(app: Flask):
    with app.test_request_context(), force_locale("zh_Hans"):
        assert translate_error("Disk full; try later").summary == "Disk full; try later"
        assert translate_error("row 1: something new").rows == ["第 1 行：something new"]  # noqa: RUF001
        assert translate_error(transfer.NOT_AN_EXPORT + " (it is not UTF-8 text)").summary == (
            "该文件不是 todoscale 的导出文件：请选择由导出生成的 CSV 或 JSON 文件。"  # noqa: RUF001
        )
