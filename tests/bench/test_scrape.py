"""The scrape benchmark names the first scrape after a burst of deaths, with and without the
janitor's round before it."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_scrape_bench_reports_the_first_scrape_after_the_janitor_and_before_it():
    done = subprocess.run(
        [sys.executable, "-m", "todoscale.bench.scrape", "--live", "1", "--restarts", "3",
         "--runs", "1"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip

    figures = json.loads(done.stdout.splitlines()[-1])

    for name in ("first_ms", "janitor_ms", "unswept_first_ms", "median_ms"):
        assert figures[name] > 0, name
    # What is left: the live worker's 5 files, the scraping process's own 2 and 2 archives.
    assert figures["files_after"] == 5 + 2 + 2
    # A scrape before any janitor's round folded the burst's files itself.
    assert figures["files_after_unswept_scrape"] == 5 + 2 + 2
    assert figures["files_before"] == 5 + 2 + 3 * 5
    assert figures["series"] > 6000


def test_the_report_redoes_a_page_from_a_run_before_the_fold_and_race_figures(tmp_path):
    # `todoscale bench --from-json BENCHMARKS.json` failed on the committed run: its scrape
    # figures predate the janitor's, the unswept scrape's and the race's.
    from todoscale.bench import report

    old = {"live_workers": 4, "restarts": 100, "files_before": 522, "files_after": 24,
           "series": 6592, "page_bytes": 927627, "first_ms": 702.33, "first_cpu_ms": 700.08,
           "median_ms": 7.89, "median_cpu_ms": 7.89, "min_ms": 7.73, "max_ms": 8.82,
           "runs": 9, "command": ["todoscale.bench.scrape", "--runs", "9"]}  # fmt: skip

    lines = report.observe({"cases": {}, "in_process": {"scrape": old}})

    (line,) = [text for text in lines if "/metrics" in text]
    assert "7.89 ms median" in line
