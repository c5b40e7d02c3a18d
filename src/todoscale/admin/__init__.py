"""The admin console under `/admin/`: statistics, slow requests, jobs, live connections,
processes, on-demand profiles and memory snapshots. Admins only; 404 for everyone else."""

from datetime import UTC, datetime

from flask import Blueprint
from flask_babel import format_datetime

from todoscale.admin import jobs, memory, overview, profiles
from todoscale.admin.access import require_admin
from todoscale.web_extensions import csrf

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_admin)  # first: nobody else learns that the console exists
bp.before_request(csrf.protect)  # every admin form carries its CSRF token
for child in (overview.bp, jobs.bp, profiles.bp, memory.bp):
    bp.register_blueprint(child)


@bp.app_template_filter("timestamp")
def timestamp(seconds: float) -> str:
    """A Unix time as a short date and time in the reader's language."""
    return str(format_datetime(datetime.fromtimestamp(seconds, UTC), "short"))


__all__ = ["bp"]
