"""Notifications: the page of a user's reminders, marking them read, and the header's badge."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from todoscale.services import notifications
from todoscale.web.access import current_user, login_required

logger = logging.getLogger(__name__)

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

PAGE_SIZE = 20


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    """The user's notifications, newest first, a page at a time."""
    cursor = request.args.get("cursor") or None
    page = notifications.list_notifications(current_user(), limit=PAGE_SIZE, cursor=cursor)
    return render_template("web/notifications.html", page=page)


@bp.post("/read")
@login_required
def read_all() -> ResponseReturnValue:
    """Mark every notification read."""
    notifications.mark_all_read(current_user())
    flash(_("All notifications marked as read."), "success")
    return redirect(url_for(".index"))


@bp.post("/<notification_id>/open")
@login_required
def open_one(notification_id: str) -> ResponseReturnValue:
    """Mark one notification read and go to the list it is about."""
    notification = notifications.mark_read(current_user(), notification_id)
    if notification.list_id:
        return redirect(url_for("web.todos.show", list_id=notification.list_id))
    return redirect(url_for(".index"))


def badge_context() -> dict[str, Callable[[], int | None]]:
    """Templates get `unread_notifications()`: the logged-in user's unread count, or None."""
    return {"unread_notifications": _unread}


def _unread() -> int | None:
    if g.get("user") is None:
        return None
    try:
        return notifications.unread_count(g.user)
    except SQLAlchemyError:  # an error page while the database is failing still renders
        logger.warning("could not count unread notifications", exc_info=True)
        return None
