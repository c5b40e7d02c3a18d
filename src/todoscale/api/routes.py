"""The JSON API's blueprint, `/api/v1`: one blueprint per resource, nested under `bp`."""

from flask import Blueprint

from todoscale.api import jobs, lists, openapi, todos, tokens, users

bp = Blueprint("api", __name__, url_prefix="/api/v1")
for child in (users.bp, tokens.bp, lists.bp, todos.bp, jobs.bp, openapi.bp):
    bp.register_blueprint(child)

__all__ = ["bp"]
