"""`todoscale bench --quick` end to end on SQLite: real servers, real wrk, every one stopped.

One run for the module (seeding and booting the servers is the slow part): rung 1 (the dev
server without the index), rung 8 (`todoscale run`, as `make run`) and the floors, at 100
connections. The checks read only what a user gets: the JSON, the chart, BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_or_fail
from todoscale.bench import report
from todoscale.bench.rungs import BY_KEY, choose

pytestmark = pytest.mark.services
TODOSCALE = Path(sys.executable).parent / "todoscale"
RUNGS = "1,8"
CHOSEN = [case.key for case in choose(RUNGS, quick=True)]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the quick ladder once; hand over its folder, output and JSON."""
    if shutil.which("wrk") is None:
        skip_or_fail("wrk is not installed (apt-get install wrk): the ladder's load tool")
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [str(TODOSCALE), "bench", "--quick", "--rungs", RUNGS, "--connections", "100",
         "--out", str(out / "results"), "--markdown", str(out / "BENCHMARKS.md")],
        capture_output=True, text=True, timeout=300, check=False, cwd=out,
        env={**os.environ, "TODOSCALE_DATABASE_URL": "sqlite:////nonexistent/user-data.db"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (folder,) = (out / "results").iterdir()
    scratch = re.search(r"Scratch instances in (\S+):", done.stderr)
    assert scratch, done.stderr
    return {
        "out": out,
        "folder": folder,
        "scratch": scratch.group(1),
        "result": json.loads((folder / "ladder.json").read_text()),
        "stdout": done.stdout,
    }


def test_the_json_has_every_chosen_rung_with_figures(ran):
    result = ran["result"]
    assert result["chosen"] == CHOSEN
    assert set(result["cases"]) == set(CHOSEN)
    for key in CHOSEN:
        figures = result["cases"][key]["100"]
        (run,) = figures["runs"]
        assert run["requests"] > 0 and run["tool"] == "wrk", key
        assert figures["requests_per_second"]["median"] > 0, key
        assert figures["server_cpu_us_per_request"] > 0, key
    assert (
        result["plans"]["sqlite, index dropped (rung 1)"]["plan"]
        != (result["plans"]["sqlite, with the index (rung 2 on)"]["plan"])
    )


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_is_a_png_of_the_expected_size(ran):
    assert _png_size(ran["folder"] / "ladder.png") == report.CHART_SIZE
    assert _png_size(ran["out"] / "BENCHMARKS.png") == report.CHART_SIZE


def test_benchmarks_md_names_every_rung_and_embeds_the_chart(ran):
    text = (ran["out"] / "BENCHMARKS.md").read_text()
    for key in CHOSEN:
        assert BY_KEY[key].label in text, key
    assert "![req/s per rung](BENCHMARKS.png)" in text
    assert f"{os.cpu_count()} cores" in text
    assert "| 43 | 1.0x |" in text  # the article's first rung beside ours
    assert (ran["folder"] / "BENCHMARKS.md").read_text().count("| 1 |") == 1


def test_no_process_it_started_is_left(ran):
    result = ran["result"]
    assert result["processes_started"], "the bench recorded no process"
    assert result["processes_left"] == []
    # Independently of the bench's own count: nothing runs on its scratch instances.
    still = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and ran["scratch"].encode() in (proc / "environ").read_bytes():
                still.append(proc.name)
        except OSError:
            continue
    assert still == []
    assert not Path(ran["scratch"]).exists()


def test_the_servers_never_saw_the_callers_database(ran):
    logs = "".join(p.read_text() for p in (ran["folder"] / "logs").rglob("*.log"))
    assert "user-data.db" not in logs
    assert "/nonexistent" not in logs
