"""models/todos.py: a todo's read shape, TodoRow, called without an app."""

from __future__ import annotations

import types
from datetime import UTC, datetime
from typing import Union, get_args, get_origin, get_type_hints

from flask import has_app_context

from todoscale.models import Todo, TodoRow
from todoscale.models.todos import READ_COLUMNS

WHEN = datetime(2026, 11, 22, 8, 15, tzinfo=UTC)


def _todo() -> Todo:
    return Todo(
        id="a" * 32,
        list_id="b" * 32,
        creator_id="c" * 32,
        title="Pay rent",
        notes="by Friday",
        completed=True,
        completed_at=WHEN,
        due_at=None,
        created_at=WHEN,
        updated_at=WHEN,
        version=3,
        reminded_for=WHEN,
    )


def test_a_row_is_what_a_reader_sees_of_a_todo_and_no_more():
    assert not has_app_context()

    row = TodoRow.of(_todo())

    assert row == ("a" * 32, "b" * 32, "Pay rent", "by Friday", True, WHEN, None, WHEN, WHEN, 3)
    assert not {"creator_id", "reminded_for", "notes_searchable"} & set(row._fields)


def test_reads_select_the_rows_fields_in_its_order():
    assert tuple(column.name for column in READ_COLUMNS) == TodoRow._fields


def test_each_field_has_its_columns_type_and_nullability():
    for name, hint in get_type_hints(TodoRow).items():
        column = Todo.__table__.c[name]
        optional = get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)
        inner = next(arg for arg in get_args(hint) if arg is not type(None)) if optional else hint
        stored = getattr(column.type, "impl", column.type)  # a TypeDecorator's, its own
        assert (inner, optional) == (stored.python_type, column.nullable), name
