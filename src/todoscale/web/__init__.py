"""The server-rendered pages: lists, todos, and the user's profile, nested under `bp`."""

from flask import Blueprint

from todoscale.extensions import csrf
from todoscale.web import lists, profile, todos

bp = Blueprint("web", __name__)
bp.before_request(csrf.protect)  # every POST of every page carries the form's CSRF token
for child in (todos.bp, lists.bp, profile.bp):
    bp.register_blueprint(child)

__all__ = ["bp"]
