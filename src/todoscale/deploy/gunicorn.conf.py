"""gunicorn settings for todoscale: the server's `TODOSCALE_*` settings come from `load_config`."""

import multiprocessing
import os
import re
import sys

# gevent by variable or on the command line (`-k gevent`, as the Socket.IO service runs). The
# variable is read here, not through `load_config`: importing todoscale.config (pydantic)
# already loads `socket` and `threading`, which gevent must patch first.
_GEVENT = os.environ.get("TODOSCALE_WORKER_CLASS") == "gevent" or bool(
    re.search(r"(^| )(-k|--worker-class)[ =]gevent( |$)", " ".join(sys.argv[1:]))
)
if _GEVENT:
    # Patch here, before the import below loads the app's package (redis, psycopg, kombu...
    # take `socket` and `ssl` at import). gunicorn has imported ssl itself by now, which is
    # harmless: nothing holds a direct reference into it. Its gevent worker patches again
    # after the fork, a no-op then.
    from gevent import monkey

    monkey.patch_all()

from todoscale.config import ConfigurationError, load_config, metrics_root  # noqa: E402
from todoscale.deploy.servers import GunicornLogger, bind_spec, log_config  # noqa: E402
from todoscale.ops import groups  # noqa: E402  (the standard library only: see its docstring)

try:
    _settings = load_config()
    bind = bind_spec(os.environ)
except (ConfigurationError, ValueError) as exc:
    # A message saying which variable to fix, not gunicorn's "Failed to read config file"
    # and a traceback (SystemExit passes through gunicorn's handler).
    sys.exit(f"todoscale: {exc}")
workers = _settings["WORKERS"] or 2 * multiprocessing.cpu_count() + 1
# sync, gthread or gevent (the Socket.IO service: one gevent worker holds every connection).
worker_class = "gevent" if _GEVENT else _settings["WORKER_CLASS"]
threads = _settings["THREADS"]
# gevent: each open WebSocket is a connection; leave room for HTTP beside thousands of them.
worker_connections = 10_000
# A listen queue deep enough for the 1000-connection benchmark.
backlog = 2048
timeout = 30
# On SIGTERM a worker finishes the requests it holds for up to this long.
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then, staggered, so a slow leak never takes them all at once.
max_requests = 10_000
max_requests_jitter = 1_000
# The web service's app is loaded once, in the master, and every worker is a fork of it: a
# worker that died (or was recycled) serves again within a second, where one loading the
# package anew spent 2 s of CPU first (7.7-11.6 s after a SIGKILL on a busy machine:
# tests/chaos/test_load.py). The app is fork-safe by design (connections open lazily, each
# process announces itself and starts its threads at its first request, post_fork below
# drops any pooled connection). Not the Socket.IO service: its app starts background tasks
# at creation, which a fork would leave behind in the master.
preload_app = _settings["REALTIME"] != "serve"
# The app writes one JSON line per request itself (TODOSCALE_REQUEST_LOG); gunicorn's access
# log would double it, so its logger class logs none. Its own messages use the app's JSON.
accesslog = None
errorlog = "-"
logger_class = GunicornLogger
logconfig_dict = log_config(_settings["LOG_LEVEL"])
proc_name = "todoscale"

if _GEVENT:
    import gevent

    def post_request(worker: object, req: object, environ: object, resp: object) -> None:
        """Yield to the other connections after each request.

        A gevent greenlet runs until it would block; a keep-alive connection whose next
        request has already arrived never blocks, so under load a few connections were
        served over and over while the rest waited past their clients' timeouts.
        """
        gevent.sleep(0)


# The master owns this server's metrics folder: wiped, the variable exported, while the
# configuration loads (gunicorn names this module `__config__`), so before the app is
# imported even with --preload and before any worker exists.
if __name__ == "__config__" and groups.current_group() is None:
    _role = "socketio" if _settings["REALTIME"] == "serve" else "web"
    groups.start_group(metrics_root(_settings), groups.group_name(_role, bind), os.environ)


def post_fork(server: object, worker: object) -> None:
    """A preloaded worker drops the database connections it inherited (SQLAlchemy's advice
    for forking: never share a pooled connection between processes); it opens its own."""
    if preload_app:
        from todoscale.extensions import db
        from todoscale.wsgi import app

        with app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)


def child_exit(server: object, worker: object) -> None:
    """A worker exited: fold its counters into the archive and drop its live gauges now."""
    folder = groups.current_group()
    pid = getattr(worker, "pid", None)
    if folder is not None and pid is not None:
        with groups.locked(folder.parent):
            groups.retire(folder, pid)
