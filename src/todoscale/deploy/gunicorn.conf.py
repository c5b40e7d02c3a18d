"""gunicorn settings for todoscale; every value can be overridden by environment variables."""

import multiprocessing
import os
import re
import sys

# gevent by variable or on the command line (`-k gevent`, as the Socket.IO service runs).
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

from todoscale.config import load_config, metrics_root  # noqa: E402
from todoscale.deploy.servers import GunicornLogger, bind_spec, log_config  # noqa: E402
from todoscale.ops import groups  # noqa: E402  (the standard library only: see its docstring)

bind = bind_spec(os.environ)
workers = int(os.environ.get("TODOSCALE_WORKERS") or 2 * multiprocessing.cpu_count() + 1)
# sync, gthread or gevent (the Socket.IO service: one gevent worker holds every connection).
worker_class = "gevent" if _GEVENT else os.environ.get("TODOSCALE_WORKER_CLASS", "sync")
threads = int(os.environ.get("TODOSCALE_THREADS") or 1)
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
logconfig_dict = log_config(os.environ.get("TODOSCALE_LOG_LEVEL", "INFO"))
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
    _role = "socketio" if os.environ.get("TODOSCALE_REALTIME") == "serve" else "web"
    groups.start_group(metrics_root(load_config()), groups.group_name(_role, bind), os.environ)


def child_exit(server: object, worker: object) -> None:
    """A worker exited: fold its counters into the archive and drop its live gauges now."""
    folder = groups.current_group()
    pid = getattr(worker, "pid", None)
    if folder is not None and pid is not None:
        with groups.locked(folder.parent):
            groups.retire(folder, pid)
