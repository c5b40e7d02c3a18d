"""Lists and their members: who may see, change and share them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError

from todoscale.cache import memoize, track
from todoscale.exceptions import AccessDeniedError, ConflictError, NotFoundError
from todoscale.extensions import db
from todoscale.models import MEMBER, OWNER, Membership, Todo, TodoList, User, new_id
from todoscale.services.accounts import find_user
from todoscale.services.rules import check_list_name
from todoscale.signals import list_deleted, list_updated, membership_changed


@dataclass(frozen=True)
class ListInfo:
    """A list with what its readers see of it: members' usernames and how many todos."""

    todo_list: TodoList
    members: list[str]
    todo_count: int


def visible_list(actor: User, list_id: str) -> TodoList:
    """Return the list if `actor` is its owner or a member; NotFoundError otherwise."""
    if "\x00" in list_id:  # no id has one, and PostgreSQL refuses NUL in a query (a 500)
        raise NotFoundError("No such list.")
    todo_list = db.session.scalars(
        select(TodoList)
        .join(Membership, Membership.list_id == TodoList.id)
        .where(TodoList.id == list_id, Membership.user_id == actor.id)
    ).first()
    if todo_list is None:
        raise NotFoundError("No such list.")
    return todo_list


def visible_list_id(actor: User, list_id: str) -> str:
    """`list_id` if `actor` can see that list, from the cached ids; NotFoundError otherwise.

    For writers that need only the id: a list deleted after this check is refused by the
    foreign key (see `todos._into_list`).
    """
    if list_id not in visible_list_ids(actor):
        raise NotFoundError("No such list.")
    return list_id


def _owned_list(actor: User, list_id: str) -> TodoList:
    todo_list = visible_list(actor, list_id)
    if todo_list.owner_id != actor.id:
        raise AccessDeniedError("Only the list's owner may do that.")
    return todo_list


_VISIBLE_LIST_IDS = select(Membership.list_id).where(Membership.user_id == bindparam("user_id"))


def member_scope(user_id: str) -> str:
    """The local cache scope of what `user_id` can see: bumped when their lists change."""
    return f"member:{user_id}"


track(member_scope, Membership.user_id)


def visible_list_ids(actor: User) -> list[str]:
    """Ids of every list `actor` can see (cached until their memberships change)."""
    ids = memoize(f"lists:{actor.id}", [member_scope(actor.id)], lambda: _read_list_ids(actor.id))
    return cast(list[str], ids)


def _read_list_ids(user_id: str) -> list[str]:
    rows = db.session.connection().execute(_VISIBLE_LIST_IDS, {"user_id": user_id})
    return [list_id for (list_id,) in rows]


_DEFAULT_LIST_ID = select(TodoList.id).where(
    TodoList.owner_id == bindparam("user_id"), TodoList.is_default
)


def default_list_id(actor: User) -> str:
    """The id of `actor`'s default list (its Inbox), cached like their visible lists.

    The Inbox is made with the account and can never be deleted, but the memberships'
    stamp guards the entry all the same: reading it uncached cost a quarter of a
    `POST /api/v1/todos` (py-spy, the ORM compiling a one-column select every time).
    """
    list_id = memoize(
        f"default-list:{actor.id}",
        [member_scope(actor.id)],
        lambda: _read_default_list_id(actor.id),
    )
    if list_id is None:
        raise NotFoundError("You have no default list.")
    return list_id


def _read_default_list_id(user_id: str) -> str | None:
    rows = db.session.connection().execute(_DEFAULT_LIST_ID, {"user_id": user_id})
    return rows.scalar()


def describe(lists: list[TodoList]) -> list[ListInfo]:
    """Attach members and todo counts to `lists`, in two queries whatever their number."""
    ids = [todo_list.id for todo_list in lists]
    members: dict[str, list[str]] = {list_id: [] for list_id in ids}
    rows = db.session.execute(
        select(Membership.list_id, User.username)
        .join(User, User.id == Membership.user_id)
        .where(Membership.list_id.in_(ids))
        .order_by(Membership.created_at, User.username)
    )
    for list_id, username in rows:
        members[list_id].append(username)
    counts: dict[str, int] = {
        list_id: count
        for list_id, count in db.session.execute(
            select(Todo.list_id, func.count()).where(Todo.list_id.in_(ids)).group_by(Todo.list_id)
        )
    }
    return [ListInfo(item, members[item.id], counts.get(item.id, 0)) for item in lists]


def get_list(actor: User, list_id: str) -> ListInfo:
    """One visible list, described."""
    return describe([visible_list(actor, list_id)])[0]


def list_lists(actor: User) -> list[ListInfo]:
    """Every list `actor` owns or is a member of, default first, then oldest first."""
    lists = list(
        db.session.scalars(
            select(TodoList)
            .join(Membership, Membership.list_id == TodoList.id)
            .where(Membership.user_id == actor.id)
            .order_by(TodoList.is_default.desc(), TodoList.created_at, TodoList.id)
        )
    )
    return describe(lists)


def create_list(actor: User, name: str) -> ListInfo:
    """Create a list owned by `actor`."""
    todo_list = TodoList(id=new_id(), owner_id=actor.id, name=check_list_name(name))
    db.session.add_all([todo_list, Membership(todo_list=todo_list, user_id=actor.id, role=OWNER)])
    db.session.commit()
    list_updated.send(create_list, todo_list=todo_list)
    return get_list(actor, todo_list.id)


def rename_list(actor: User, list_id: str, name: str) -> ListInfo:
    """Rename a list; only its owner may."""
    todo_list = _owned_list(actor, list_id)
    todo_list.name = check_list_name(name)
    db.session.commit()
    list_updated.send(rename_list, todo_list=todo_list)
    return get_list(actor, list_id)


def delete_list(actor: User, list_id: str) -> None:
    """Delete a list and its todos; only its owner may, and never the default list."""
    todo_list = _owned_list(actor, list_id)
    if todo_list.is_default:
        raise ConflictError("The default list cannot be deleted.")
    member_ids = list(
        db.session.scalars(select(Membership.user_id).where(Membership.list_id == list_id))
    )
    # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on, and
    # being explicit keeps the unit of work obvious on every engine.
    db.session.execute(delete(Todo).where(Todo.list_id == list_id))
    db.session.execute(delete(Membership).where(Membership.list_id == list_id))
    db.session.execute(delete(TodoList).where(TodoList.id == list_id))
    db.session.commit()
    list_deleted.send(delete_list, list_id=list_id, member_ids=member_ids)


def share_list(actor: User, list_id: str, *, username: str) -> ListInfo:
    """Add the user named `username` as a member; only the owner may share."""
    _owned_list(actor, list_id)
    user = find_user(username) if len(username) <= 32 else None
    if user is None:
        raise NotFoundError(f"No user is called {username!r}.")
    if db.session.get(Membership, (list_id, user.id)) is not None:
        raise ConflictError(f"{user.username} is already a member of this list.")
    db.session.add(Membership(list_id=list_id, user_id=user.id, role=MEMBER))
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise ConflictError(f"{user.username} is already a member of this list.") from exc
    membership_changed.send(share_list, list_id=list_id, user_id=user.id, added=True)
    return get_list(actor, list_id)


def remove_member(actor: User, list_id: str, *, username: str) -> None:
    """Remove a member: the owner may remove anyone else, a member only themself."""
    todo_list = visible_list(actor, list_id)
    user = find_user(username) if len(username) <= 32 else None
    membership = db.session.get(Membership, (list_id, user.id)) if user else None
    if user is None or membership is None:
        raise NotFoundError(f"{username!r} is not a member of this list.")
    if actor.id != todo_list.owner_id and user.id != actor.id:
        raise AccessDeniedError("A member may remove only themself.")
    if membership.role == OWNER:
        raise ConflictError("The owner cannot leave their own list; delete it instead.")
    db.session.delete(membership)
    db.session.commit()
    membership_changed.send(remove_member, list_id=list_id, user_id=user.id, added=False)


def member_ids(list_id: str) -> list[str]:
    """Ids of the users who can see the list (its owner and members); empty when it is gone."""
    return list(db.session.scalars(select(Membership.user_id).where(Membership.list_id == list_id)))
