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
# imported even with --preload and before any worker exists. The Socket.IO service has no
# master (deploy/lone_worker.py): its one process owns its folder, as a Celery worker does.
if __name__ == "__config__" and groups.current_group() is None:
    _role = "socketio" if _settings["REALTIME"] == "serve" else "web"
    groups.start_group(metrics_root(_settings), groups.group_name(_role, bind), os.environ)

if __name__ == "__config__":
    # The app's modules in the master, after the group (prometheus_client's mode) and after
    # gevent's patches above: the workers forked from it share their pages, where each
    # imported its own copy (todoscale.prefork says how much that saves; granian does the
    # same), and a worker that died or was recycled serves again within a second: it makes
    # the app (30 ms of CPU) where it imported the package anew first (2 s of CPU, 7.7-11.6 s
    # after a SIGKILL on a busy machine: tests/chaos/test_load.py). Modules, not the app
    # (no --preload): pools, threads and the Socket.IO service's tasks are each worker's own.
    from todoscale.prefork import import_app_modules

    import_app_modules()


def child_exit(server: object, worker: object) -> None:
    """A worker exited: fold its counters into the archive and drop its live gauges now,
    unless the metrics lock is taken (gunicorn calls this from its SIGCHLD handler, which the
    next worker's death can re-enter: see `groups.retire_if_free`)."""
    folder = groups.current_group()
    pid = getattr(worker, "pid", None)
    if folder is not None and pid is not None:
        groups.retire_if_free(folder, pid)
