"""Opt-in tracing: off by default; on, a request's spans carry its request id."""

from __future__ import annotations

import os
import subprocess
import sys

from flask_migrate import upgrade
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import Account
from todoscale.ops import tracing


def test_tracing_is_off_without_an_endpoint(app):
    assert tracing.EXTENSION not in app.extensions
    assert app.config["OTEL_ENDPOINT"] is None


def test_with_an_endpoint_a_request_and_its_sql_share_a_trace_with_the_request_id(make_app):
    exporter = InMemorySpanExporter()
    app = make_app(OTEL_ENDPOINT="http://127.0.0.1:9/v1/traces", OTEL_SAMPLE_RATIO=1.0,
                   OTEL_EXPORTER=exporter)  # fmt: skip
    with app.app_context():
        upgrade()
    account = Account(app.test_client(), "tracer")
    exporter.clear()

    response = account.get("/api/v1/lists", headers={"X-Request-ID": "trace-me-1"})

    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind.name == "SERVER"]
    assert len(server) == 1
    assert server[0].attributes[tracing.REQUEST_ID_ATTRIBUTE] == "trace-me-1"
    assert server[0].attributes["http.route"] == "/api/v1/lists"
    sql = [s for s in spans if s.attributes.get("db.system") or s.attributes.get("db.system.name")]
    assert sql, [s.name for s in spans]
    assert {s.context.trace_id for s in sql} == {server[0].context.trace_id}
    assert "opentelemetry.sdk.trace" in sys.modules


TWO_APPS = """
import os, sys, tempfile
from flask_migrate import upgrade
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from todoscale import create_app
from todoscale.ops import tracing

base = tempfile.mkdtemp()
for n in range(2):
    folder = os.path.join(base, f"app{n}")
    exporter = InMemorySpanExporter()
    app = create_app({"ENV_NAME": "testing", "INSTANCE_PATH": folder,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/ops.db",
                      "OTEL_ENDPOINT": "http://127.0.0.1:9/v1/traces", "OTEL_SAMPLE_RATIO": 1.0,
                      "OTEL_EXPORTER": exporter})
    with app.app_context():
        upgrade()
    assert app.test_client().get("/api/v1/lists").status_code == 401
    spans = exporter.get_finished_spans()
    sql = [s for s in spans if s.attributes.get("db.system") or s.attributes.get("db.system.name")]
    print(f"app{n}: {len(sql)} sql spans")
    if n == 0:
        app.extensions[tracing.EXTENSION].shutdown()  # the first app is done with
"""


def test_two_apps_in_one_process_trace_apart_and_exit_quietly(tmp_path):
    script = tmp_path / "two_apps.py"
    script.write_text(TWO_APPS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
        check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "Processor is already shutdown" not in done.stderr
    assert "already instrumented" not in done.stderr
    counts = dict(line.split(": ") for line in done.stdout.splitlines())
    assert counts["app0"] != "0 sql spans"
    assert counts["app1"] == counts["app0"]  # the second app's SQL is its own, and traced
