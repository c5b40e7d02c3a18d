"""web/todos.py: the home page, adding, editing, ticking, deleting and paging todos."""

from __future__ import annotations

import re
from datetime import timedelta

from todoscale.extensions import db
from todoscale.models import Todo


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
    assert "Enter a date like 2026-12-31." in html and 'value="next week"' in html
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


def test_edit_todo(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "draft", due_at="2026-12-01")
    todo = _todo(ann.app, "draft")
    page = ann.text(f"/todos/{todo.id}/edit")
    assert 'value="draft"' in page and 'value="2026-12-01"' in page
    response = ann.post(f"/todos/{todo.id}/edit", {"title": "final", "notes": "n", "due_at": ""})
    assert response.status_code == 302 and response.headers["Location"] == f"/lists/{inbox}"
    edited = _todo(ann.app, "final")
    assert (edited.notes, edited.due_at, edited.version) == ("n", None, 2)


def test_edit_todo_with_bad_input_writes_nothing(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "draft")
    todo = _todo(ann.app, "draft")
    response = ann.post(f"/todos/{todo.id}/edit", {"title": "changed", "notes": "x" * 10_001})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "must be at most 10000 characters" in html and 'value="changed"' in html
    assert _todo(ann.app, "draft").version == 1  # the valid title was not saved either


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
