"""The leak regression test: pytest-memray's limit_leaks on the main request loops passes,
and fails as soon as a leaking view is among them (so it would catch one added)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

CHECK = "tests/leaks/leakcheck_request_loops.py"


def test_limit_leaks_passes_the_main_loops_and_fails_a_leaking_view():
    env = {**os.environ, "PYTHONMALLOC": "malloc"}  # pymalloc's arenas would hide frees
    argv = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--memray",
            "--no-cov", "-o", "addopts=", CHECK]  # fmt: skip
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    report = done.stdout
    assert (
        "PASSED tests/leaks/leakcheck_request_loops.py::test_the_main_request_loops_do_not_leak"
        in report
    ), report[-3000:]
    assert (
        "FAILED tests/leaks/leakcheck_request_loops.py::test_with_a_leaking_view_the_loops_leak"
        in report
    ), report[-3000:]
    assert "leak_view" not in report and "leak" in report
