"""gunicorn settings for todoscale; every value can be overridden by environment variables."""

import multiprocessing
import os

_port = os.environ.get("PORT", "8000")
bind = os.environ.get("TODOSCALE_BIND", f"127.0.0.1:{_port}")
workers = int(os.environ.get("TODOSCALE_WORKERS", 2 * multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("TODOSCALE_WORKER_CLASS", "sync")
threads = int(os.environ.get("TODOSCALE_THREADS", "1"))
# A listen queue deep enough for the 1000-connection benchmark.
backlog = 2048
timeout = 30
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then, staggered, so a slow leak never takes them all at once.
max_requests = 10_000
max_requests_jitter = 1_000
# The app writes one JSON line per request itself; gunicorn's access log would double it.
accesslog = None
errorlog = "-"
proc_name = "todoscale"
