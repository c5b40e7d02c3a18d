"""Write the figures a `make chaos` run recorded (TODOSCALE_CHAOS_FIGURES) into the table of
docs/RELIABILITY.md, between its two markers, with the date and the machine's cores.

    python -m tests.chaos.reliability FIGURES.jsonl docs/RELIABILITY.md
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

BEGIN, END = "<!-- chaos figures: begin -->", "<!-- chaos figures: end -->"


def table(entries: list[dict[str, object]]) -> str:
    """The Markdown table of the entries, one row each."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Last `make chaos`: {when}, {os.cpu_count()} cores.",
        "",
        "| fault | database | figure | goal | held |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in entries:
        held = "yes" if entry["held"] else "**NO**"
        lines.append(
            f"| {entry['fault']} | {entry['database']} | `{entry['figure']}` | "
            f"`{entry['goal']}` | {held} |"
        )
    if not entries:
        lines.append("| (no figure was recorded: did the run fail before its tests?) | | | | |")
    return "\n".join(lines)


def main(figures: Path, document: Path) -> int:
    """Replace the table of `document` with the figures of `figures`; 1 if a goal failed."""
    entries = [json.loads(line) for line in figures.read_text().splitlines() if line.strip()]
    text = document.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    document.write_text(f"{head}{BEGIN}\n{table(entries)}\n{END}{tail}")
    print(table(entries))
    return 0 if entries and all(entry["held"] for entry in entries) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
