"""The extensions of what a browser reaches, created unbound: CSRF tokens, translations,
compression. A leaf: imports nothing of ours.

Apart from `extensions` because the Celery worker serves no page: it never imports
Flask-WTF and WTForms, Flask-Compress and Brotli, nor Flask-Babel and Babel unless it sends
reminder emails (core.create_worker_app)."""

from flask_babel import Babel
from flask_compress import Compress
from flask_wtf.csrf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
compress = Compress()
