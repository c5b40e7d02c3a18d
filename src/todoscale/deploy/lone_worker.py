"""The Socket.IO service as one gunicorn gevent worker without its master:
`python -m todoscale.deploy.lone_worker <gunicorn's options> todoscale.wsgi:app`.

The service runs exactly one worker (its Socket.IO state lives in that process), so
gunicorn's master only forked it, forwarded signals to it and started another when it
died, which supervisord (`todoscale run`, the cluster) does already. The master still
cost 20 MiB of PSS beside its worker, though it imports the app's modules before the
fork (todoscale.prefork): the worker writes to most of the pages it inherits. Here the
process reads gunicorn's configuration (deploy/gunicorn.conf.py: gevent's patches first,
the metrics group), binds, and runs gunicorn's own gevent worker in place, with its
signals: TERM stops accepting, serves open connections for up to `--graceful-timeout`,
then exits; QUIT and INT exit at once; USR1 reopens the log files. Of the configuration's
hooks, the worker's (`post_request`) run; the master's (`child_exit`, folding a dead
worker's metrics) have no worker to outlive: this process owns its metrics group, as a
Celery worker does, and its next start wipes it. Measured (`todoscale run`, idle): 52 + 50
MiB for the master and its worker, 79 MiB for this one process.
"""

from __future__ import annotations

import os
import sys

from gunicorn import sock
from gunicorn.app.wsgiapp import WSGIApplication


def main() -> None:
    """Load gunicorn's configuration and the listening sockets, then be the worker."""
    sys.argv[0] = "gunicorn"
    application = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]")
    cfg = application.cfg
    log = cfg.logger_class(cfg)
    listeners = sock.create_sockets(cfg, log)
    # Its parent is whoever started it (supervisord): the worker exits if that changes,
    # as it does when its master goes.
    worker = cfg.worker_class(1, os.getppid(), listeners, application, cfg.timeout / 2.0, cfg, log)
    worker.pid = os.getpid()
    log.info("Serving as a lone gunicorn worker with pid: %s", worker.pid)
    try:
        worker.init_process()
    finally:
        worker.tmp.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
