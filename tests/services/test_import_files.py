"""services.import_files: an import file read as a stream, its format and its row count."""

from __future__ import annotations

import tracemalloc

import pytest

from todoscale.exceptions import ValidationError
from todoscale.services import import_files, transfer

MIB = 1024 * 1024


def parse(data: bytes) -> tuple[str, list[dict[str, object]]]:
    """The format and every raw row, read to the end."""
    fmt, rows = import_files.read_rows(data)
    return fmt, list(rows)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"name,age\nbob,3\n",
        b"title,colour\nx,red\n",
        b'["a list"]',
        b'{"items": []}',
        b'{"version": 1, "todos": []}',
        b'{"todos": {"title": "x"}}',
        b"{not json",
        b'{"todos": [{"title": "x"}',
        b'{"todos": []} trailing',
        b'{"todos": ["\xff"]}',
        b'title\n"unterminated\n',
        b"title\nfine\n\xff\n",
    ],
)
def test_what_is_not_an_export_is_refused_by_its_shape(data):
    with pytest.raises(ValidationError) as refused:
        parse(data)
    assert refused.value.detail == transfer.NOT_AN_EXPORT
    assert list(refused.value.errors) == ["file"]


def test_a_json_fault_is_named_in_one_line_without_the_files_text():
    with pytest.raises(ValidationError) as refused:
        parse(b'{"todos": [{"title": "secret"}, nonsense]}')

    [message] = refused.value.errors["file"]
    assert "invalid JSON" in message
    assert "\n" not in message and "secret" not in message


def test_the_format_is_told_by_the_content_and_a_bom_is_accepted():
    assert parse(b"\xef\xbb\xbftitle\nx\n") == ("csv", [{"title": "x"}])
    assert parse(b' \n{"todos": []}') == ("json", [])
    assert parse(b'\xef\xbb\xbf{"todos": [{"title": "x"}, 3]}') == (
        "json",
        [{"title": "x"}, {"": 3}],
    )


def test_count_rows_reads_the_whole_file_and_stops_past_the_limit():
    data = b"title\n" + b"a\n" * 10 + b"\n"

    assert import_files.count_rows(data, 10) == ("csv", 10)
    with pytest.raises(ValidationError) as refused:
        import_files.count_rows(data, 9)
    assert refused.value.errors == {
        "file": ["has more than 9 rows, the most one import takes; split it into smaller files"]
    }
    with pytest.raises(ValidationError):
        import_files.count_rows(data + b'"open', 100)  # malformed at the very end


def test_many_tiny_rows_are_counted_without_holding_them():
    # The audit's file was 10 MiB of `{"todos": [0, 0, ...]}`: read whole, it took a web
    # process to 1.2 GB. Streamed, what is allocated beside the file stays small (a smaller
    # file here: tracing every allocation is slow).
    data = b'{"todos":[' + b"0," * (MIB // 4) + b"0]}"
    tracemalloc.start()
    try:
        fmt, count = import_files.count_rows(data, MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (fmt, count) == ("json", MIB // 4 + 1)
    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB allocated while counting"
