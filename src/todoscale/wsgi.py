"""The WSGI entry point: `gunicorn todoscale.wsgi:app`."""

from todoscale.app import create_app

app = create_app(migrations=False)
