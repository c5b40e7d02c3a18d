"""The data model: columns, relationships, constraints."""

from todoscale.models.base import new_id, utcnow
from todoscale.models.jobs import Job, Notification
from todoscale.models.lists import MEMBER, OWNER, Membership, TodoList
from todoscale.models.sessions import WebSession
from todoscale.models.todos import Todo, TodoRow
from todoscale.models.users import ApiToken, User

__all__ = [
    "MEMBER",
    "OWNER",
    "ApiToken",
    "Job",
    "Membership",
    "Notification",
    "Todo",
    "TodoList",
    "TodoRow",
    "User",
    "WebSession",
    "new_id",
    "utcnow",
]
