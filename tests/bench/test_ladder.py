"""`todoscale bench --quick` end to end: real servers, real wrk, every one stopped.

One run for the module (seeding and booting the servers is the slow part), at 100
connections. On SQLite: rung 1 (the dev server without the index), rung 8 (`todoscale run`,
as `make run`) and the floors. In the PostgreSQL pass (TODOSCALE_TEST_DATABASE_URL): rung 7 on
PostgreSQL with Redis (a database of its own beside the suite's, the suite's Redis) and the
floors. The checks read only what a user gets: the JSON, the chart, BENCHMARKS.md.
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
from sqlalchemy.engine import make_url

from tests.conftest import skip_or_fail, suite_redis_url
from todoscale.bench import report
from todoscale.bench.rungs import BY_KEY, choose

pytestmark = pytest.mark.services
TODOSCALE = Path(sys.executable).parent / "todoscale"
POSTGRES = os.environ.get("TODOSCALE_TEST_DATABASE_URL")
RUNGS = "7-shared" if POSTGRES else "1,8"
CHOSEN = [case.key for case in choose(RUNGS, quick=True)]


def _services() -> list[str]:
    """The bench's PostgreSQL and Redis options for the PostgreSQL pass (none on SQLite)."""
    if not POSTGRES:
        return []
    redis_url = suite_redis_url()
    if redis_url is None:
        skip_or_fail("no Redis answers: rung 7 on PostgreSQL needs one")
    url = make_url(POSTGRES)
    bench_url = url.set(database=f"{url.database}_bench").render_as_string(hide_password=False)
    return ["--postgres-url", bench_url, "--redis-url", str(redis_url)]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the quick ladder once; hand over its folder, output and JSON."""
    if shutil.which("wrk") is None:
        skip_or_fail("wrk is not installed (apt-get install wrk): the ladder's load tool")
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [str(TODOSCALE), "bench", "--quick", "--rungs", RUNGS, "--connections", "100",
         "--seconds", "1", "--out", str(out / "results"),
         "--markdown", str(out / "BENCHMARKS.md"), *_services()],
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
    assert result["skipped"] == {}
    plans = result["plans"]
    assert "USE TEMP B-TREE" in " ".join(plans["sqlite, index dropped (rung 1)"]["plan"])
    assert "ix_todos_list_created" in " ".join(plans["sqlite, with the index (rung 2 on)"]["plan"])
    if POSTGRES:
        assert "ix_todos_list_created" in " ".join(plans["postgresql, with the index"]["plan"])


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
    # The article's figure for the first rung measured, beside ours.
    article = BY_KEY[CHOSEN[0]].article
    assert article is not None and f"| {article:,.0f} |" in text
    in_results = (ran["folder"] / "BENCHMARKS.md").read_text()
    assert all(BY_KEY[key].label in in_results for key in CHOSEN)
    assert "![req/s per rung](ladder.png)" in in_results


def test_benchmarks_md_is_redone_from_its_json_alone(ran):
    beside = json.loads((ran["out"] / "BENCHMARKS.json").read_text())
    assert {**beside, "json": None} == {**ran["result"], "json": None}
    page = ran["out"] / "BENCHMARKS.md"
    before = page.read_text()
    page.unlink()
    (ran["out"] / "BENCHMARKS.png").unlink()
    done = subprocess.run(
        [str(TODOSCALE), "bench", "--from-json", str(ran["out"] / "BENCHMARKS.json")],
        capture_output=True, text=True, timeout=120, check=False, cwd=ran["out"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert page.read_text() == before
    assert _png_size(ran["out"] / "BENCHMARKS.png") == report.CHART_SIZE


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


def test_every_server_s_memory_is_reported_idle_and_after(ran):
    memory = ran["result"]["memory"]
    setups = {BY_KEY[key].setup for key in CHOSEN}
    assert set(memory["idle"]) == set(memory["after"]) == setups
    for when in ("idle", "after"):
        for setup, figure in memory[when].items():
            # A Python server is never below a few MiB of its own.
            assert figure["processes"] >= 1 and figure["pss_bytes"] > 4 * 2**20, (when, setup)
    if "run" in setups:
        # todoscale run: supervisord, granian's main and workers, Socket.IO, worker, beat.
        assert memory["idle"]["run"]["processes"] >= 5
    text = (ran["out"] / "BENCHMARKS.md").read_text()
    assert "## Memory" in text
    for setup in setups:
        assert re.search(rf"\| {setup} \| [^|]+ \| \d+ \| [\d.]+ MiB \| [\d.]+ MiB \|", text)


def test_a_group_s_pss_counts_its_processes_only(tmp_path):
    from todoscale.bench import procs

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(32 * 2**20); time.sleep(30)"],
        start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(50):  # until its 32 MiB are touched
            size, count = procs.group_pss({child.pid})
            if size > 32 * 2**20:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert count == 1 and size > 32 * 2**20
        assert procs.group_pss({child.pid + 10**7}) == (0, 0)  # no such group
    finally:
        child.kill()
        child.wait()
