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
