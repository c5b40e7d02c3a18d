"""Lists: create, rename, delete, share, and leave them."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from todoscale.exceptions import ConflictError, NotFoundError, ValidationError
from todoscale.services import lists
from todoscale.services.lists import default_list_id
from todoscale.web.access import current_user, login_required, show_errors
from todoscale.web.forms import ListForm, ShareForm
from todoscale.web.todos import render_home

bp = Blueprint("lists", __name__, url_prefix="/lists")


def _settings(
    list_id: str,
    *,
    rename: ListForm | None = None,
    share: ShareForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    info = lists.get_list(current_user(), list_id)
    rename = rename or ListForm(formdata=None, name=info.todo_list.name)
    return render_template(
        "web/list_settings.html",
        info=info,
        rename_form=rename,
        share_form=share or ShareForm(formdata=None),
    ), status


@bp.post("")
@login_required
def create() -> ResponseReturnValue:
    """Create a list and open it; on a bad name, back to the home page with the message."""
    form = ListForm()
    if form.validate_on_submit():
        try:
            info = lists.create_list(current_user(), form.name.data or "")
        except ValidationError as exc:
            show_errors(form, exc.errors)
        else:
            flash(_("List created."), "success")
            return redirect(url_for("web.todos.show", list_id=info.todo_list.id))
    return render_home(default_list_id(current_user()), list_form=form, status=422)


@bp.get("/<list_id>/settings")
@login_required
def settings(list_id: str) -> ResponseReturnValue:
    """A list's name, members and sharing."""
    return _settings(list_id)


@bp.post("/<list_id>/rename")
@login_required
def rename(list_id: str) -> ResponseReturnValue:
    """Rename a list (its owner only)."""
    form = ListForm()
    if form.validate_on_submit():
        try:
            lists.rename_list(current_user(), list_id, form.name.data or "")
        except ValidationError as exc:
            show_errors(form, exc.errors)
        else:
            flash(_("List renamed."), "success")
            return redirect(url_for(".settings", list_id=list_id))
    return _settings(list_id, rename=form, status=422)


@bp.post("/<list_id>/delete")
@login_required
def delete(list_id: str) -> ResponseReturnValue:
    """Delete a list and its todos (its owner only, never the Inbox)."""
    try:
        lists.delete_list(current_user(), list_id)
    except ConflictError:
        flash(_("Your Inbox cannot be deleted."), "error")
        return redirect(url_for(".settings", list_id=list_id))
    flash(_("List deleted."), "success")
    return redirect(url_for("web.todos.index"))


@bp.post("/<list_id>/members")
@login_required
def share(list_id: str) -> ResponseReturnValue:
    """Share a list with a user by username (its owner only)."""
    lists.get_list(current_user(), list_id)  # a list the user cannot see is a 404 page
    form = ShareForm()
    if form.validate_on_submit():
        username = (form.username.data or "").strip()
        try:
            lists.share_list(current_user(), list_id, username=username)
        except NotFoundError:
            form.username.errors = [_("No one has this username.")]
        except ConflictError:
            form.username.errors = [_("This person can already see the list.")]
        else:
            flash(_("The list is now shared with %(name)s.", name=username), "success")
            return redirect(url_for(".settings", list_id=list_id))
    return _settings(list_id, share=form, status=422)


@bp.post("/<list_id>/members/<username>/remove")
@login_required
def remove_member(list_id: str, username: str) -> ResponseReturnValue:
    """The owner removes a member, or a member leaves."""
    lists.remove_member(current_user(), list_id, username=username)
    if username.lower() == current_user().username.lower():
        flash(_("You left the list."), "success")
        return redirect(url_for("web.todos.index"))
    flash(_("%(name)s can no longer see the list.", name=username), "success")
    return redirect(url_for(".settings", list_id=list_id))
