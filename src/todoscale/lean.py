"""What a server process leaves out of its imports: python-socketio's clients' libraries.

`import socketio` (Flask-SocketIO's, and ours for the managers) loads Engine.IO's clients,
whose modules import requests, websocket-client and aiohttp at the top when they are
installed: about 1,400 modules where the app needs 1,200, 13 MiB of each process that
imports them on a development install (aiohttp and websocket-client come with the test
tools), 5 MiB with `make run`'s packages alone (requests comes with the tracing exporter).
No server process ever opens a Socket.IO client. The servers' entry points (granian's
launcher, gunicorn's master, the Celery worker) call `import_socketio_without_clients`
first; anything else (the tests, whose clients connect to those servers) imports as usual.
"""

from __future__ import annotations

import sys

# The modules of Engine.IO's clients that only a client uses (engineio.client and
# engineio.async_client take each as None when it cannot be imported).
CLIENT_ONLY = ("requests", "websocket", "aiohttp")


def import_socketio_without_clients() -> None:
    """Import python-socketio with Engine.IO's clients' libraries held back, then let them
    be imported again: a later `import requests` (the OTLP exporter's) works as ever; only
    Engine.IO's clients, in this process, go without them. A no-op when socketio is already
    imported; a module already imported is not held back."""
    if "socketio" in sys.modules or "engineio" in sys.modules:
        return
    held = [name for name in CLIENT_ONLY if name not in sys.modules]
    for name in held:
        # A None entry makes `import name` raise ImportError.
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import socketio  # noqa: F401
    finally:
        for name in held:
            del sys.modules[name]
