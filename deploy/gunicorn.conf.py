"""gunicorn settings for todoscale; every value can be overridden by environment variables."""

import multiprocessing
import os

if os.environ.get("TODOSCALE_WORKER_CLASS") == "gevent":
    # Patch before anything imports ssl or socket (this file imports the app's package).
    from gevent import monkey

    monkey.patch_all()

from todoscale.deploy.servers import GunicornLogger, bind_address, log_config

_host, _port = bind_address(os.environ)
bind = f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"
workers = int(os.environ.get("TODOSCALE_WORKERS") or 2 * multiprocessing.cpu_count() + 1)
# sync, gthread or gevent (`pip install 'todoscale[gevent]'`).
worker_class = os.environ.get("TODOSCALE_WORKER_CLASS", "sync")
threads = int(os.environ.get("TODOSCALE_THREADS") or 1)
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
