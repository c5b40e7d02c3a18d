"""The WSGI entry point: `gunicorn todoscale.wsgi:app`."""

from todoscale.deploy.granian_worker import restore_default_signals

# First, before the seconds the app takes to load: a TERM meanwhile must end the worker.
restore_default_signals()

from todoscale.app import create_app  # noqa: E402

app = create_app(migrations=False)
