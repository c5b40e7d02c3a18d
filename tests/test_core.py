"""core.create_worker_app: the Celery worker's app imports and registers nothing of the web's
(its jobs are tested with a real worker in tests/tasks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.database_free

# What only pages, API calls and responses use: the worker must import none of it.
WEB_ONLY = (
    "todoscale.web",
    "todoscale.auth",
    "todoscale.admin",
    "todoscale.errors",
    "todoscale.api.routes",
    "todoscale.api.todos",
    "todoscale.app",
    "wtforms",
    "flask_wtf",
    "flask_compress",
    "flask_limiter",
    "flask_swagger_ui",
    "flask_babel",
)

PROBE = """
import json, sys
import todoscale.worker
app = todoscale.worker.flask_app
loaded = sorted(name for name in {web_only!r} if name in sys.modules)
endpoints = sorted(rule.endpoint for rule in app.url_map.iter_rules())
print(json.dumps([loaded, endpoints, sorted(todoscale.worker.celery.tasks)]))
"""


def _probe(tmp_path, **env: str) -> tuple[list[str], list[str], list[str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TODOSCALE_")}
    clean.update(TODOSCALE_INSTANCE_PATH=str(tmp_path), **env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(web_only=WEB_ONLY)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded, endpoints, tasks = json.loads(done.stdout.splitlines()[-1])
    return loaded, endpoints, tasks


def test_the_worker_app_imports_no_web_module_and_serves_nothing(tmp_path):
    loaded, endpoints, tasks = _probe(tmp_path)

    assert loaded == []
    assert endpoints == ["static"]  # Flask's own: no page, no API route
    # ... yet every task is registered.
    assert {
        "todoscale.run_job",
        "todoscale.requeue_stalled_jobs",
        "todoscale.send_due_reminders",
        "todoscale.send_reminder_email",
        "todoscale.purge_expired",
    } <= set(tasks)


def test_a_worker_that_sends_email_knows_the_pages_its_links_name(tmp_path):
    _loaded, endpoints, _tasks = _probe(tmp_path, TODOSCALE_SMTP_URL="smtp://127.0.0.1:1")

    assert "web.todos.show" in endpoints
    assert not any(endpoint.startswith("api.") for endpoint in endpoints)


RULES = """
import json
import todoscale.{module}
from todoscale.cache import writes
print(json.dumps(sorted(writes._RULES)))
"""


def test_the_worker_bumps_every_cache_scope_its_writes_touch(tmp_path):
    # The lean worker imported no module declaring the todos' rules (services.todos): an
    # import's rows bumped no list scope, and the page kept its cached empty list (the
    # browser test of an import seen live).
    def rules(module: str) -> list[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TODOSCALE_")}
        clean.update(TODOSCALE_INSTANCE_PATH=str(tmp_path))
        script = RULES.format(module=module)
        if module == "app":
            script = script.replace("import todoscale.app", "import todoscale.wsgi")
        done = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout.splitlines()[-1]))

    assert rules("worker") == rules("app")
    assert "todos" in rules("worker")
