"""docs/RELIABILITY.md's table written from a run's figures: rows of faults the run did not
measure stay, rows it measured again are replaced where they stood."""

from __future__ import annotations

import json
from pathlib import Path

from tests.chaos.reliability import BEGIN, END, main


def _entry(fault: str, database: str, figure: str, *, held: bool = True) -> dict[str, object]:
    return {"fault": fault, "database": database, "figure": figure, "goal": "g", "held": held}


def test_a_run_of_some_faults_keeps_the_rows_of_the_others(tmp_path: Path) -> None:
    document, figures = tmp_path / "RELIABILITY.md", tmp_path / "figures.jsonl"
    figures.write_text(
        "\n".join(
            json.dumps(entry) for entry in [_entry("a", "sqlite", "1"), _entry("b", "sqlite", "2")]
        )
    )
    document.write_text(f"# head\n\n{BEGIN}\nold\n{END}\n\nnotes stay\n")
    assert main(figures, document) == 0

    figures.write_text(
        "\n".join(
            json.dumps(entry)
            for entry in [_entry("a", "sqlite", "3", held=False), _entry("a", "postgresql", "4")]
        )
    )
    assert main(figures, document) == 1  # a goal of this run failed

    text = document.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| a |") or
            line.startswith("| b |")]  # fmt: skip
    assert rows == [
        "| a | sqlite | `3` | `g` | **NO** |",  # measured again: replaced in its place
        "| b | sqlite | `2` | `g` | yes |",  # not measured again: kept
        "| a | postgresql | `4` | `g` | yes |",  # new: appended
    ]
    assert "2 rows of that run, 1 kept from earlier runs" in text
    assert text.startswith("# head\n") and text.endswith(f"{END}\n\nnotes stay\n")
