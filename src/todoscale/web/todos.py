"""The home page: the lists in a sidebar, the chosen list's todos, and the todo forms."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_timezone
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from todoscale.exceptions import PreconditionFailedError, ValidationError
from todoscale.models import Todo, TodoRow, utcnow
from todoscale.services import lists, todos
from todoscale.services.lists import default_list_id
from todoscale.services.pagination import encode_cursor
from todoscale.services.rules import check_time_zone
from todoscale.web.access import current_user, login_required, show_errors
from todoscale.web.forms import ExportForm, ImportForm, ListForm, TodoForm
from todoscale.web.job_panel import shown_job
from todoscale.web.zones import LOCAL_FORMAT, to_wall_clock

bp = Blueprint("todos", __name__)

PAGE_SIZE = 10


def _page(list_id: str) -> tuple[todos.Page, str | None]:
    """The page the query string asks for and the cursor of newer todos, if any."""
    cursor, before = request.args.get("cursor"), request.args.get("before")
    if before:
        return todos.list_newer_todos(
            current_user(), list_id=list_id, before=before, limit=PAGE_SIZE
        )
    page = todos.list_todos(current_user(), list_id=list_id, cursor=cursor or None, limit=PAGE_SIZE)
    newer = (
        encode_cursor(page.items[0].created_at, page.items[0].id) if cursor and page.items else None
    )
    return page, newer


# The item the page's script copies for a todo that arrives live: markers in place of the
# id, title, notes and times (an id of zeros survives url_for unescaped).
LIVE_ID, LIVE_TITLE, LIVE_NOTES = "0" * 32, "%%1%%", "%%2%%"


def _live_todo(list_id: str) -> TodoRow:
    now = utcnow()
    return TodoRow(
        id=LIVE_ID,
        list_id=list_id,
        title=LIVE_TITLE,
        notes=LIVE_NOTES,
        completed=False,
        completed_at=None,
        due_at=now,
        created_at=now,
        updated_at=now,
        version=0,
    )


def todo_form(todo: Todo | None = None) -> TodoForm:
    """A todo form to show: empty, or with `todo`'s values, its times in the page's zone."""
    form = TodoForm(formdata=None, obj=todo)
    form.time_zone.data = str(get_timezone())
    form.due_at.data = to_wall_clock(todo.due_at) if todo and todo.due_at else None
    return form


def _form_zone(form: TodoForm) -> str:
    """The zone the posted form showed its times in, else the page's."""
    try:
        return check_time_zone(form.time_zone.data or "")
    except ValidationError:
        return str(get_timezone())


def _shown_due(due_at: datetime | None, zone: str) -> str:
    """What the form showed for this due time (to the minute), in `zone`."""
    return to_wall_clock(due_at, zone).strftime(LOCAL_FORMAT) if due_at else ""


def _shown_version(form: TodoForm) -> int:
    """The version the posted form showed; 0 (older than any) when it carries none."""
    raw = form.version.data or ""
    return int(raw) if raw.isdecimal() and len(raw) < 10 else 0


def render_home(
    list_id: str,
    *,
    form: TodoForm | None = None,
    list_form: ListForm | None = None,
    import_form: ImportForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    """The home page on one list, with the forms as given (to show their errors), and the
    panel of the export or import that `?job=` names."""
    info = lists.get_list(current_user(), list_id)
    page, newer = _page(list_id)
    return render_template(
        "web/home.html",
        info=info,
        lists=lists.list_lists(current_user()),
        page=page,
        newer=newer,
        form=form or todo_form(),
        list_form=list_form or ListForm(formdata=None),
        export_form=ExportForm(formdata=None),
        import_form=import_form or ImportForm(formdata=None),
        shown_job=shown_job(),
        live_todo=_live_todo(list_id),
    ), status


def _back_to(list_id: str) -> Response:
    """Back to the page of the list the form was on (its cursors come back as hidden fields)."""
    cursor, before = request.form.get("cursor") or None, request.form.get("before") or None
    return redirect(url_for(".show", list_id=list_id, cursor=cursor, before=before))


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """The user's default list."""
    return render_home(default_list_id(current_user()))


@bp.get("/lists/<list_id>")
@login_required
def show(list_id: str) -> ResponseReturnValue:
    """One list's todos, newest first, a page at a time."""
    return render_home(list_id)


@bp.post("/lists/<list_id>/todos")
@login_required
def create(list_id: str) -> ResponseReturnValue:
    """Add a todo to the list; on bad input, the page again with the form as typed."""
    form = TodoForm()
    if form.validate_on_submit():
        try:
            todos.create_todo(
                current_user(),
                list_id=list_id,
                title=form.title.data or "",
                notes=form.notes.data or "",
                due_at=form.due_at.as_datetime(_form_zone(form)),
            )
        except ValidationError as exc:
            show_errors(form, exc.errors)
        else:
            flash(_("Todo added."), "success")
            return redirect(url_for(".show", list_id=list_id))
    return render_home(list_id, form=form, status=422)


@bp.route("/todos/<todo_id>/edit", methods=["GET", "POST"])
@login_required
def edit(todo_id: str) -> ResponseReturnValue:
    """Change a todo's title, notes and due time, unless someone changed it since the form
    was shown (its version travels with the form): then the form comes back, as typed, with
    what the todo reads now."""
    todo = todos.visible_todo(current_user(), todo_id)
    if request.method == "GET":
        return render_template("web/todo_edit.html", todo=todo, form=todo_form(todo))
    form = TodoForm()
    if not form.validate_on_submit():
        return render_template("web/todo_edit.html", todo=todo, form=form), 422
    zone = _form_zone(form)
    changes = {"title": form.title.data or "", "notes": form.notes.data or ""}
    # An untouched due field keeps the time as stored (the form shows it to the minute).
    if (form.due_at.raw_data or [""])[0].strip() != _shown_due(todo.due_at, zone):
        changes["due_at"] = form.due_at.as_datetime(zone)
    try:
        todos.edit_todo(current_user(), todo_id, changes, version=_shown_version(form))
    except ValidationError as exc:
        show_errors(form, exc.errors)
    except PreconditionFailedError:
        current = todos.visible_todo(current_user(), todo_id)
        form.version.data = str(current.version)  # saving again replaces what it reads now
        return render_template("web/todo_edit.html", todo=current, form=form, conflict=True), 409
    else:
        flash(_("Todo saved."), "success")
        return redirect(url_for(".show", list_id=todo.list_id))
    return render_template("web/todo_edit.html", todo=todo, form=form), 422


@bp.post("/todos/<todo_id>/toggle")
@login_required
def toggle(todo_id: str) -> ResponseReturnValue:
    """Mark a todo done or not done (`completed` says which); JSON for the page's script."""
    todo = todos.complete_todo(
        current_user(), todo_id, completed=request.form.get("completed") == "1"
    )
    if request.accept_mimetypes.best == "application/json":
        return {"id": todo.id, "list_id": todo.list_id, "completed": todo.completed}
    return _back_to(todo.list_id)


@bp.post("/todos/<todo_id>/delete")
@login_required
def delete(todo_id: str) -> ResponseReturnValue:
    """Delete a todo."""
    list_id = todos.visible_todo(current_user(), todo_id).list_id
    todos.delete_todo(current_user(), todo_id)
    flash(_("Todo deleted."), "success")
    return _back_to(list_id)
