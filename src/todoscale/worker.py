"""The Celery worker's entry point: `celery -A todoscale.worker worker` (and `beat`)."""

import os
import sys

from todoscale.config import ConfigurationError, load_config, metrics_root
from todoscale.ops import groups

# A worker's main process owns the metrics folder of its pool, and must set it up before
# prometheus_client is imported (below, with the app): the pool processes it forks then
# write their metrics there, and `/metrics` of any server on the host shows them.
if "worker" in sys.argv and groups.current_group() is None:
    name = groups.group_name("worker", str(os.getpid()))
    try:
        groups.start_group(metrics_root(load_config()), name, os.environ)
    except ConfigurationError as exc:
        sys.exit(f"todoscale: {exc}")  # which setting to fix, not a traceback

from todoscale.lean import import_socketio_without_clients
from todoscale.realtime import uses_socketio

try:
    if uses_socketio(load_config()):  # the relay's emitters never import it (realtime)
        import_socketio_without_clients()  # before the app imports it: a worker opens no client
except ConfigurationError as exc:
    sys.exit(f"todoscale: {exc}")

from todoscale.core import create_worker_app

try:
    flask_app = create_worker_app()
except ConfigurationError as exc:
    sys.exit(f"todoscale: {exc}")
celery = flask_app.extensions["celery"]
# The Redis broker's socket timeouts are for a process that publishes inside a request
# (tasks.REDIS_BROKER_OPTIONS). A worker given them received nothing more after a 30 s hang
# (SIGSTOP) of Redis, not even beat's sweeps, for the 75 s the test waited
# (tests/chaos/test_redis_faults.py); without them it took every job once Redis was back.
celery.conf.broker_transport_options = {}
