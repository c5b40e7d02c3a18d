"""Each chaos test prints its figure as one `fault=... figure=... goal=...` line; with
TODOSCALE_CHAOS_FIGURES set (as `make chaos` sets it) the line is also appended, as JSON, to
that file, from which `python -m tests.chaos.reliability` writes docs/RELIABILITY.md."""

from __future__ import annotations

import json
import os
import time

# Every line reported in this run: tests/chaos/conftest.py prints them in pytest's summary.
LINES: list[str] = []


def scale() -> str:
    """`full` under `make chaos` (TODOSCALE_CHAOS=full), else `fast` (the bounded CI version)."""
    return "full" if os.environ.get("TODOSCALE_CHAOS") == "full" else "fast"


def bounded(fast: int, full: int) -> int:
    """`fast` in `make test`, `full` under `make chaos`."""
    return full if scale() == "full" else fast


def report(fault: str, figure: str, goal: str, *, held: bool) -> None:
    """Print the figure line (again in pytest's summary, past its capture) and record it."""
    line = f"fault={fault} figure={figure} goal={goal} held={'yes' if held else 'NO'}"
    LINES.append(line)
    print(line)
    path = os.environ.get("TODOSCALE_CHAOS_FIGURES")
    if path:
        entry = {"fault": fault, "figure": figure, "goal": goal, "held": held,
                 "scale": scale(), "database": database_kind(), "at": time.time()}  # fmt: skip
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


def database_kind() -> str:
    """`postgresql` when the suite runs on PostgreSQL, else `sqlite`."""
    return "postgresql" if os.environ.get("TODOSCALE_TEST_DATABASE_URL") else "sqlite"
