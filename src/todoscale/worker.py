"""The Celery worker's entry point: `celery -A todoscale.worker worker` (and `beat`)."""

from todoscale.app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
