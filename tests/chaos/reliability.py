"""Write the figures a `make chaos` run recorded (TODOSCALE_CHAOS_FIGURES) into the table of
docs/RELIABILITY.md, between its two markers, with the date and the machine's cores. A row
of the table whose fault and database this run did not measure is kept (a run of one module,
a pass that failed early): each row is the last figure measured for its fault.

    python -m tests.chaos.reliability FIGURES.jsonl docs/RELIABILITY.md
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

BEGIN, END = "<!-- chaos figures: begin -->", "<!-- chaos figures: end -->"
# A row of the table as `row` writes it: its fault and database are its key.
ROW = re.compile(r"^\| (?P<fault>[^|`]+?) \| (?P<database>[^|`]+?) \| `.*` \| `.*` \| .+ \|$")


def row(entry: dict[str, object]) -> str:
    """The table's row of one entry."""
    held = "yes" if entry["held"] else "**NO**"
    return (
        f"| {entry['fault']} | {entry['database']} | `{entry['figure']}` | "
        f"`{entry['goal']}` | {held} |"
    )


def table(entries: list[dict[str, object]], earlier: str = "") -> str:
    """The Markdown table of the entries, one row each, after the rows of the `earlier`
    table (its text) that none of them measured again; those measured again are replaced
    where they stood."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    fresh = {(str(entry["fault"]), str(entry["database"])): row(entry) for entry in entries}
    kept = [(found["fault"], found["database"], line)
            for line in earlier.splitlines() if (found := ROW.match(line))]  # fmt: skip
    older = sum(1 for fault, base, _line in kept if (fault, base) not in fresh)
    merged = [fresh.pop((fault, base), line) for fault, base, line in kept]
    merged += fresh.values()
    lines = [
        f"Last written: {when}, {os.cpu_count()} cores; {len(merged) - older} rows of that "
        f"run, {older} kept from earlier runs that this one did not measure again.",
        "",
        "| fault | database | figure | goal | held |",
        "| --- | --- | --- | --- | --- |",
        *merged,
    ]
    if not merged:
        lines.append("| (no figure was recorded: did the run fail before its tests?) | | | | |")
    return "\n".join(lines)


def main(figures: Path, document: Path) -> int:
    """Write the figures of `figures` into the table of `document` (keeping its rows they do
    not measure again); 1 if a goal of theirs failed."""
    entries = [json.loads(line) for line in figures.read_text().splitlines() if line.strip()]
    text = document.read_text()
    head, _, rest = text.partition(BEGIN)
    earlier, _, tail = rest.partition(END)
    written = table(entries, earlier)
    document.write_text(f"{head}{BEGIN}\n{written}\n{END}{tail}")
    print(written)
    return 0 if entries and all(entry["held"] for entry in entries) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
