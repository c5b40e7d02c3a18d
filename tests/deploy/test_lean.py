"""The servers' entry points import python-socketio without its clients' libraries
(todoscale.lean) where they use it, and those libraries can still be imported afterwards;
where they only emit through the relay, they do not import python-socketio at all."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.database_free  # imports of entry points, in processes of their own

HELD = ("requests", "websocket", "aiohttp")

# Which of the held-back libraries are loaded after the entry point's imports, what
# Engine.IO's client took, and whether `import requests` still works afterwards.
PROBE = """
import json, sys
{entry}
loaded = sorted(name for name in {held!r} if name in sys.modules)
import engineio.client
took = engineio.client.requests is not None
try:
    import requests
    later = True
except ImportError:
    later = False
print(json.dumps([loaded, took, later]))
"""

ENTRIES = {
    # granian's launcher and gunicorn's master (deploy/gunicorn.conf.py) alike.
    "prefork": "from todoscale.prefork import import_app_modules; import_app_modules()",
    # `celery -A todoscale.worker`: the app is made at import.
    "worker": "import todoscale.worker",
}


# Emitting through a message queue: the app uses python-socketio's managers. (The write-only
# Redis manager connects at its first publish: nothing listens there, nothing is sent.)
MESSAGE_QUEUE = {
    "TODOSCALE_REALTIME": "emit",
    "TODOSCALE_SOCKETIO_MESSAGE_QUEUE": "redis://127.0.0.1:1/0",
}


def _run(code: str, tmp_path, extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TODOSCALE_")}
    env["TODOSCALE_INSTANCE_PATH"] = str(tmp_path)
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def _probe(entry: str, tmp_path, extra: dict[str, str]) -> tuple[list[str], bool, bool]:
    code = PROBE.format(entry=entry, held=HELD)
    loaded, took, later = json.loads(_run(code, tmp_path, extra))
    return loaded, took, later


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_server_entry_points_leave_out_the_socketio_clients_libraries(entry, tmp_path):
    loaded, took, later = _probe(ENTRIES[entry], tmp_path, MESSAGE_QUEUE)

    assert loaded == []
    assert took is False  # Engine.IO's client went without requests in this process
    # ... and nothing else does: requests (the OTLP exporter's) imports as ever.
    assert later is (importlib.util.find_spec("requests") is not None)


def test_other_processes_import_socketio_as_usual(tmp_path):
    # A test's Socket.IO client (or any process that is not a server) keeps its libraries.
    _loaded, took, _later = _probe("import todoscale.app", tmp_path, MESSAGE_QUEUE)

    assert took is (importlib.util.find_spec("requests") is not None)


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("realtime", ["emit", "off"])
def test_entry_points_that_only_emit_through_the_relay_import_no_socketio(
    entry, realtime, tmp_path
):
    # `todoscale run`'s HTTP workers and Celery worker, on the embedded set-up (no Redis):
    # python-socketio, Engine.IO and Flask-SocketIO are 5 MiB a process they never use.
    code = f"import json, sys\n{ENTRIES[entry]}\n" + (
        "print(json.dumps(sorted(m for m in ('socketio', 'engineio', 'flask_socketio') "
        "if m in sys.modules)))"
    )
    loaded = json.loads(_run(code, tmp_path, {"TODOSCALE_REALTIME": realtime}))

    assert loaded == []
