"""The README's configuration table, rendered from the declaration (`make config-table`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from todoscale.config.settings import Settings


@dataclass(frozen=True)
class Setting:
    """One row of the README's table, as `Settings` declares it."""

    env: str
    key: str
    default: str
    help: str


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _rows() -> tuple[Setting, ...]:
    rows = []
    for key, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        default = str(extra.get("shown", _shown(field.default)))
        meaning = " ".join((field.description or "").split())  # a docstring's lines, joined
        rows.append(Setting(str(field.validation_alias), key, default, meaning))
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _rows()


def configuration_table() -> str:
    """The README's configuration table, rendered from `Settings`."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{s.env}` | {s.default} | {s.help} |" for s in SETTINGS]
    return "\n".join(lines) + "\n"


_TABLE = re.compile(r"^\| variable \| default \| meaning \|\n(?:\|.*\n)+", re.MULTILINE)


def with_configuration_table(readme: str) -> str:
    """`readme` with its configuration table replaced by the one `Settings` renders."""
    if not _TABLE.search(readme):
        raise ValueError("no `| variable | default | meaning |` table to replace")
    return _TABLE.sub(lambda _: configuration_table(), readme, count=1)


def main(argv: list[str]) -> None:
    """Rewrite the configuration table of each README named in `argv`."""
    for name in argv:
        path = Path(name)
        path.write_text(with_configuration_table(path.read_text(encoding="utf-8")), "utf-8")
