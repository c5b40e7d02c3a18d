"""web/todos.py: the home page, adding, editing, ticking, deleting and paging todos."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from todoscale.extensions import db
from todoscale.models import Todo
from todoscale.services import todos


def _titles(html: str) -> list[str]:
    shown = html.split('<template id="todo-template"')[0]  # not the live updates' blank item
    return re.findall(r'<p class="todo-title">([^<]*)</p>', shown)


def _todo(app, title: str) -> Todo:
    with app.app_context():
        todo: Todo = db.session.query(Todo).filter_by(title=title).one()
        db.session.expunge(todo)
        return todo


def test_home_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/"


def test_add_todo_shows_it_newest_first(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "first")
    response = ann.add_todo(inbox, "  second  ", notes="with notes", due_at="2026-12-24")
    assert response.headers["Location"] == f"/lists/{inbox}"
    html = ann.text(f"/lists/{inbox}")
    assert _titles(html) == ["second", "first"]
    assert "with notes" in html and "Due Dec 24, 2026" in html and "Todo added." in html


def test_add_todo_with_bad_input_keeps_it_and_writes_nothing(ann, row_counts):
    inbox = ann.inbox_id()
    before = row_counts()
    response = ann.post(f"/lists/{inbox}/todos", {"title": "   ", "notes": "keep me"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="title-error"' in html and "must not be empty" in html
    assert "keep me</textarea>" in html
    response = ann.post(f"/lists/{inbox}/todos", {"title": "x" * 501})
    assert "must be at most 500 characters" in response.get_data(as_text=True)
    response = ann.post(f"/lists/{inbox}/todos", {"title": "ok", "due_at": "next week"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Enter a date and time like 2026-12-31T17:00." in html and 'value="next week"' in html
    assert row_counts()["todos"] == before["todos"] == 0


def test_a_post_without_csrf_token_changes_nothing(ann, row_counts):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "keep")
    todo_id = _todo(ann.app, "keep").id
    before = row_counts()
    forged = [
        (f"/lists/{inbox}/todos", {"title": "forged"}),
        (f"/todos/{todo_id}/toggle", {"completed": "1"}),
        (f"/todos/{todo_id}/edit", {"title": "forged"}),
        (f"/todos/{todo_id}/delete", {}),
        ("/lists", {"name": "forged"}),
        ("/profile/sessions", {}),
        ("/logout", {}),
    ]
    for url, data in forged:
        assert ann.client.post(url, data=data).status_code == 400, url
        assert ann.client.post(url, data={**data, "csrf_token": "forged"}).status_code == 400
    assert row_counts() == before
    assert _todo(ann.app, "keep").completed is False
    assert ann.get("/").status_code == 200  # still logged in


def _edit_page(user, todo_id: str) -> tuple[str, dict[str, str]]:
    """The edit page and its form's fields as a browser would send them back."""
    html = user.text(f"/todos/{todo_id}/edit")
    form = re.search(rf'<form[^>]*action="/todos/{todo_id}/edit".*?</form>', html, re.S).group(0)
    fields = dict(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', form))
    fields["notes"] = re.search(r"<textarea[^>]*>([^<]*)</textarea>", html).group(1).lstrip("\r\n")
    fields.pop("csrf_token", None)
    return html, fields


def test_edit_todo(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "draft", due_at="2026-12-01T17:45")
    todo = _todo(ann.app, "draft")
    page, fields = _edit_page(ann, todo.id)
    assert 'type="datetime-local"' in page
    assert fields == {
        "title": "draft",
        "notes": "",
        "due_at": "2026-12-01T17:45",
        "version": "1",
        "time_zone": "UTC",
    }
    response = ann.post(f"/todos/{todo.id}/edit", {**fields, "title": "final", "notes": "n"})
    assert response.status_code == 302 and response.headers["Location"] == f"/lists/{inbox}"
    edited = _todo(ann.app, "final")
    assert (edited.notes, edited.due_at, edited.version) == (
        "n",
        datetime(2026, 12, 1, 17, 45, tzinfo=UTC),
        2,
    )
    response = ann.post(f"/todos/{todo.id}/edit", {**_edit_page(ann, todo.id)[1], "due_at": ""})
    assert response.status_code == 302
    assert _todo(ann.app, "final").due_at is None


def test_editing_the_title_keeps_the_due_time_as_it_was(app, ann):
    """The form showed a date alone and always sent midnight UTC: each edit moved the due."""
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "call the bank")
    todo = _todo(app, "call the bank")
    exact = datetime(2026, 12, 24, 8, 15, 30, 123456, tzinfo=UTC)  # as the API may set it
    with app.app_context():
        todos.edit_todo(ann.user(), todo.id, {"due_at": exact})
    _page, fields = _edit_page(ann, todo.id)
    assert fields["due_at"] == "2026-12-24T08:15"

    ann.post(f"/todos/{todo.id}/edit", {**fields, "title": "call the bank at 9"})

    edited = _todo(app, "call the bank at 9")
    assert (edited.due_at, edited.version) == (exact, 3)


def test_times_are_shown_and_taken_in_the_users_time_zone(app, ann):
    inbox = ann.inbox_id()
    response = ann.post("/profile/time-zone", {"time_zone": "Asia/Shanghai"})
    assert response.status_code == 302
    ann.add_todo(inbox, "dinner", due_at="2026-12-24T19:30")  # Shanghai's wall clock
    todo = _todo(app, "dinner")
    assert todo.due_at == datetime(2026, 12, 24, 11, 30, tzinfo=UTC)
    html = ann.text(f"/lists/{inbox}")
    assert "Due Dec 24, 2026, 7:30:00\u202fPM" in html  # CLDR's narrow space before PM
    assert 'data-time-zone="Asia/Shanghai"' in html
    assert "Times are in China (Shanghai) Time, as chosen in your profile." in html
    _page, fields = _edit_page(ann, todo.id)
    assert (fields["due_at"], fields["time_zone"]) == ("2026-12-24T19:30", "Asia/Shanghai")

    ann.post(f"/todos/{todo.id}/edit", {**fields, "due_at": "2026-12-25T08:00"})

    assert _todo(app, "dinner").due_at == datetime(2026, 12, 25, 0, 0, tzinfo=UTC)


def test_without_a_choice_times_follow_the_browser_and_say_so(app, ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "utc")  # no script has told the zone yet: UTC, and the page says so
    html = ann.text(f"/lists/{inbox}")
    assert 'data-time-zone="UTC"' in html
    assert "Times are in Coordinated Universal Time: your browser did not tell" in html
    ann.client.set_cookie("todoscale_tz", "America/New_York")  # what static/app.js stores
    html = ann.text(f"/lists/{inbox}")
    assert "Times are in United States (New York) Time, your browser's time zone." in html
    ann.add_todo(inbox, "lunch", due_at="2026-07-01T12:00")
    assert _todo(app, "lunch").due_at == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # EDT, -4
    ann.client.set_cookie("todoscale_tz", "Not/A_Zone")
    assert 'data-time-zone="UTC"' in ann.text(f"/lists/{inbox}")


def test_a_form_is_read_back_in_the_zone_it_was_shown_in(app, ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "meeting", due_at="2026-12-01T09:00")
    todo = _todo(app, "meeting")
    _page, fields = _edit_page(ann, todo.id)  # shown in UTC
    ann.client.set_cookie("todoscale_tz", "Europe/Paris")  # the zone changes meanwhile

    ann.post(f"/todos/{todo.id}/edit", {**fields, "due_at": "2026-12-01T10:00"})

    assert _todo(app, "meeting").due_at == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_stale_edit_is_refused_with_what_the_todo_reads_now(app, ann):
    """The form sent no version: an API edit made meanwhile was silently overwritten."""
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "buy milk")
    todo = _todo(app, "buy milk")
    _page, fields = _edit_page(ann, todo.id)  # version 1
    changed = app.test_client().patch(
        f"/api/v1/todos/{todo.id}",
        json={"title": "buy oat milk", "notes": "2 litres"},
        headers={"Authorization": f"Bearer {ann.api_token()}"},
    )
    assert changed.status_code == 200

    response = ann.post(f"/todos/{todo.id}/edit", {**fields, "title": "buy bread"})

    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Someone else changed this todo after you opened it" in html
    assert "<dd>buy oat milk</dd>" in html and "2 litres" in html
    assert re.search(r'name="title" [^>]*value="buy bread"', html)  # the form as typed
    assert 'name="version" type="hidden" value="2"' in html
    current = _todo(app, "buy oat milk")
    assert (current.notes, current.version) == ("2 litres", 2)
    # Saving again, now knowing what it reads, replaces it.
    again = ann.post(f"/todos/{todo.id}/edit", {**fields, "title": "buy bread", "version": "2"})
    assert again.status_code == 302
    assert _todo(app, "buy bread").version == 3
    assert ann.post(f"/todos/{todo.id}/edit", {"title": "no version"}).status_code == 409


def test_edit_todo_with_bad_input_writes_nothing(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "draft")
    todo = _todo(ann.app, "draft")
    _page, fields = _edit_page(ann, todo.id)
    response = ann.post(
        f"/todos/{todo.id}/edit", {**fields, "title": "changed", "notes": "x" * 10_001}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "must be at most 10000 characters" in html and 'value="changed"' in html
    assert _todo(ann.app, "draft").version == 1  # the valid title was not saved either
    for due_at, message in (
        ("9999-12-31T23:00", "must be between 0001-01-02 and 9999-12-30 (UTC)"),
        ("the 31st", "Enter a date and time like 2026-12-31T17:00."),
    ):
        ann.client.set_cookie("todoscale_tz", "America/New_York")
        response = ann.post(
            f"/todos/{todo.id}/edit", {**_edit_page(ann, todo.id)[1], "due_at": due_at}
        )
        assert response.status_code == 422, due_at
        assert message in response.get_data(as_text=True)
    assert _todo(ann.app, "draft").version == 1


def test_toggle_todo_with_and_without_javascript(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "task")
    todo = _todo(ann.app, "task")
    response = ann.post(f"/todos/{todo.id}/toggle", {"completed": "1", "cursor": "abc"})
    assert response.headers["Location"] == f"/lists/{inbox}?cursor=abc"
    assert _todo(ann.app, "task").completed is True
    assert 'aria-pressed="true"' in ann.text(f"/lists/{inbox}")
    response = ann.post(
        f"/todos/{todo.id}/toggle", {"completed": "0"}, headers={"Accept": "application/json"}
    )
    assert response.get_json() == {"id": todo.id, "list_id": inbox, "completed": False}
    assert _todo(ann.app, "task").completed_at is None


def test_delete_todo(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "gone")
    todo = _todo(ann.app, "gone")
    response = ann.post(f"/todos/{todo.id}/delete", {"before": "xyz"})
    assert response.headers["Location"] == f"/lists/{inbox}?before=xyz"
    assert "gone" not in _titles(ann.text(f"/lists/{inbox}"))


def test_another_users_list_and_todos_are_404(ann, ben, row_counts):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "private")
    todo = _todo(ann.app, "private")
    before = row_counts()
    for url in (f"/lists/{inbox}", f"/todos/{todo.id}/edit", f"/lists/{inbox}/settings"):
        response = ben.get(url)
        assert response.status_code == 404, url
        assert "Page not found" in response.get_data(as_text=True)
    for url, data in (
        (f"/lists/{inbox}/todos", {"title": "x"}),
        (f"/todos/{todo.id}/toggle", {"completed": "1"}),
        (f"/todos/{todo.id}/edit", {"title": "x"}),
        (f"/todos/{todo.id}/delete", {}),
        (f"/lists/{inbox}/rename", {"name": "x"}),
        (f"/lists/{inbox}/members", {"username": "ben"}),
        (f"/lists/{inbox}/delete", {}),
    ):
        assert ben.post(url, data).status_code == 404, url
    assert row_counts() == before


def test_titles_are_escaped(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "<script>alert(1)</script>", notes="<b>bold</b>")
    html = ann.text(f"/lists/{inbox}")
    assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_paging_older_and_newer(app, ann):
    inbox = ann.inbox_id()
    with app.app_context():
        user = ann.user()
        from todoscale.models import utcnow

        start = utcnow()
        db.session.add_all(
            [
                Todo(
                    list_id=inbox,
                    creator_id=user.id,
                    title=f"todo {n:02}",
                    created_at=start + timedelta(seconds=n),
                    updated_at=start,
                )
                for n in range(1, 26)
            ]
        )
        db.session.commit()
    first = ann.text(f"/lists/{inbox}")
    assert _titles(first) == [f"todo {n:02}" for n in range(25, 15, -1)]
    assert 'rel="prev"' not in first
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = ann.text(older)
    assert _titles(second) == [f"todo {n:02}" for n in range(15, 5, -1)]
    third_url = re.search(r'rel="next" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    third = ann.text(third_url)
    assert _titles(third) == [f"todo {n:02}" for n in range(5, 0, -1)]
    assert 'rel="next"' not in third
    newer = re.search(r'rel="prev" href="([^"]+)"', third).group(1).replace("&amp;", "&")
    back = ann.text(newer)
    assert _titles(back) == _titles(second)
    newest = re.search(r'rel="prev" href="([^"]+)"', back).group(1).replace("&amp;", "&")
    top = ann.text(newest)
    assert _titles(top) == _titles(first) and 'rel="prev"' not in top


def test_a_bad_cursor_is_a_400_page(ann):
    response = ann.get(f"/lists/{ann.inbox_id()}?cursor=not-a-cursor")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
