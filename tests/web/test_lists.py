"""web/lists.py: creating, renaming, deleting, sharing and leaving lists."""

from __future__ import annotations


def test_create_list_and_open_it(ann):
    list_id = ann.new_list("  Groceries ")
    html = ann.text(f"/lists/{list_id}")
    assert '<h1 id="list-heading">Groceries</h1>' in html and "List created." in html


def test_create_list_with_bad_name(ann, row_counts):
    before = row_counts()
    response = ann.post("/lists", {"name": " "})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="name-error"' in html and "must not be empty" in html
    assert row_counts() == before


def test_rename_list(ann):
    list_id = ann.new_list("Wrok")
    response = ann.post(f"/lists/{list_id}/rename", {"name": "Work"})
    assert response.headers["Location"] == f"/lists/{list_id}/settings"
    assert 'value="Work"' in ann.text(f"/lists/{list_id}/settings")
    response = ann.post(f"/lists/{list_id}/rename", {"name": "y" * 201})
    assert response.status_code == 422
    assert "must be at most 200 characters" in response.get_data(as_text=True)


def test_delete_list_but_never_the_inbox(ann):
    list_id = ann.new_list("Temp")
    ann.add_todo(list_id, "goes too")
    assert ann.post(f"/lists/{list_id}/delete").headers["Location"] == "/"
    assert ann.get(f"/lists/{list_id}").status_code == 404
    inbox = ann.inbox_id()
    response = ann.post(f"/lists/{inbox}/delete", follow_redirects=True)
    assert "Your Inbox cannot be deleted." in response.get_data(as_text=True)
    assert ann.get(f"/lists/{inbox}").status_code == 200


def test_share_list_with_a_member_who_then_sees_it(ann, ben):
    list_id = ann.new_list("Family")
    response = ann.post(f"/lists/{list_id}/members", {"username": "BEN"})
    assert response.headers["Location"] == f"/lists/{list_id}/settings"
    settings = ann.text(f"/lists/{list_id}/settings")
    assert "ann" in settings and "ben" in settings
    ann.add_todo(list_id, "buy bread")
    home = ben.text(f"/lists/{list_id}")
    assert "buy bread" in home and "Shared by ann with 1 person" in home
    assert "Family" in ben.text("/")  # in ben's sidebar
    ben.add_todo(list_id, "from ben")
    assert "from ben" in ann.text(f"/lists/{list_id}")


def test_share_errors_come_back_on_the_form(ann, ben):
    list_id = ann.new_list("Family")
    response = ann.post(f"/lists/{list_id}/members", {"username": "nobody"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "No one has this username." in html and 'value="nobody"' in html
    ann.post(f"/lists/{list_id}/members", {"username": "ben"})
    response = ann.post(f"/lists/{list_id}/members", {"username": "ben"})
    assert "This person can already see the list." in response.get_data(as_text=True)


def test_a_member_may_not_rename_share_or_delete(ann, ben, web_user):
    web_user("cleo")
    list_id = ann.new_list("Family")
    ann.post(f"/lists/{list_id}/members", {"username": "ben"})
    assert ben.post(f"/lists/{list_id}/rename", {"name": "Mine"}).status_code == 403
    response = ben.post(f"/lists/{list_id}/members", {"username": "cleo"})
    assert response.status_code == 403
    assert "Only the owner of this list can do that." in response.get_data(as_text=True)
    assert ben.post(f"/lists/{list_id}/delete").status_code == 403
    assert ben.post(f"/lists/{list_id}/members/ann/remove").status_code == 403
    settings = ben.text(f"/lists/{list_id}/settings")
    assert "Only the owner, ann, can rename" in settings and "/rename" not in settings


def test_member_leaves_and_owner_removes(ann, ben):
    list_id = ann.new_list("Family")
    ann.post(f"/lists/{list_id}/members", {"username": "ben"})
    response = ben.post(f"/lists/{list_id}/members/ben/remove")
    assert response.headers["Location"] == "/"
    assert ben.get(f"/lists/{list_id}").status_code == 404
    ann.post(f"/lists/{list_id}/members", {"username": "ben"})
    response = ann.post(f"/lists/{list_id}/members/ben/remove")
    assert response.headers["Location"] == f"/lists/{list_id}/settings"
    assert ben.get(f"/lists/{list_id}").status_code == 404
