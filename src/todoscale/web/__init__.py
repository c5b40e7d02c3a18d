"""The server-rendered pages: lists, todos, search, jobs, notifications and the profile,
nested under `bp`."""

from flask import Blueprint

from todoscale.web import jobs, lists, notifications, profile, search, todos
from todoscale.web.zones import zone_label
from todoscale.web_extensions import csrf

bp = Blueprint("web", __name__)
bp.before_request(csrf.protect)  # every POST of every page carries the form's CSRF token
for child in (todos.bp, lists.bp, search.bp, jobs.bp, notifications.bp, profile.bp):
    bp.register_blueprint(child)
bp.app_context_processor(notifications.badge_context)  # the header's badge, on every page
bp.app_context_processor(lambda: {"zone_label": zone_label})  # time zones named in the language

__all__ = ["bp"]
