"""schemathesis (every check, bounded examples) against the real server and its own
`/api/v1/openapi.json`, authenticated as a real user: 0 x 5xx, 0 schema violations."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from tests.chaos.conftest import ApiServer
from tests.chaos.figures import bounded, database_kind, report, scale
from tests.conftest import skip_or_fail
from todoscale.services import jobs

CONFIG = Path(__file__).with_name("schemathesis.toml")
ROOT = Path(__file__).resolve().parents[2]


def _finished_export(app: Flask, server: ApiServer, token: str) -> str:
    """An export of the fuzzer's that has its file (run here: the server has no worker)."""
    made = server.http(token).request("POST", "/api/v1/exports", {"format": "csv"})
    assert made.status == 202, (made.status, made.body)
    with app.app_context():
        jobs.run_job(made.body["id"], worker_name="chaos")
    return str(made.body["id"])


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    app: Flask, api_server: ApiServer, tmp_path: Path
) -> None:
    # schemathesis keeps a cache under its working directory: the test's own folder.
    if scale() == "fast" and database_kind() == "postgresql":
        # CI's budget: make test fuzzes in its SQLite pass; make chaos on both databases.
        pytest.skip("fuzzed in the SQLite pass of make test; on PostgreSQL by make chaos")
    st = Path(sys.executable).with_name("st")
    if not st.exists() and shutil.which("st") is None:
        skip_or_fail("schemathesis is missing: pip install -e '.[dev]'")
    token = api_server.register("fuzzer")
    _finished_export(app, api_server, token)
    examples = bounded(fast=5, full=50)
    argv = [str(st), "--config-file", str(CONFIG), "run", f"{api_server.url}/api/v1/openapi.json"]
    argv += ["--url", f"{api_server.url}/api/v1", "--checks", "all"]
    argv += ["--max-examples", str(examples), "--seed", "13", "--workers", "2"]
    argv += ["--header", f"Authorization: Bearer {token}", "--no-color"]
    # Revoking every token of the fuzzer would leave the rest of the run unauthenticated;
    # tests/api/test_tokens.py covers it.
    argv += ["--exclude-name", "DELETE /tokens"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.chaos.st_hooks", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    out = run.stdout + run.stderr
    (tmp_path / "schemathesis.log").write_text(out)
    cases = re.search(r"(\d+) generated", out)
    failures = re.search(r"(\d+) unique failures?", out)
    server_errors = len(re.findall(r"Server error|\[5\d\d\]", out))
    found = int(failures.group(1)) if failures else 0
    report(
        "schemathesis",
        f"{server_errors}_x_5xx,{found}_unique_failures_in_"
        f"{cases.group(1) if cases else '?'}_cases({examples}_per_operation)",
        "0_x_5xx,0_schema_violations",
        held=run.returncode == 0,
    )
    assert run.returncode == 0, out[-6000:]
    assert cases is not None and int(cases.group(1)) > 100, out[-3000:]
