"""A stale If-Match never overwrites: of two writers that read the same version, one wins."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from todoscale.exceptions import PreconditionFailedError
from todoscale.extensions import db
from todoscale.models import Todo
from todoscale.services.accounts import register_user
from todoscale.services.todos import create_todo, edit_todo, etag_of, visible_todo


def test_two_clients_with_the_same_if_match_one_wins_the_other_gets_412(app, alice):
    todo = alice.add_todo("original")
    first, second = app.test_client(), app.test_client()
    auth = alice.headers
    etag_first = first.get(todo["url"], headers=auth).headers["ETag"]
    etag_second = second.get(todo["url"], headers=auth).headers["ETag"]
    assert etag_first == etag_second

    won = first.patch(
        todo["url"], json={"title": "first"}, headers={**auth, "If-Match": etag_first}
    )
    lost = second.patch(
        todo["url"], json={"title": "second"}, headers={**auth, "If-Match": etag_second}
    )

    assert won.status_code == 200
    assert lost.status_code == 412
    assert lost.mimetype == "application/problem+json"
    final = alice.get(todo["url"])
    assert final.get_json() == won.get_json()
    assert final.get_json()["title"] == "first"
    assert final.headers["ETag"] == won.headers["ETag"]


def test_racing_writers_with_the_same_if_match_never_both_win(app, alice):
    todo = alice.add_todo("original")
    etag = alice.get(todo["url"]).headers["ETag"]
    start = threading.Barrier(2)
    results: dict[str, int] = {}

    def write(title: str) -> None:
        client = app.test_client()
        start.wait()
        response = client.patch(
            todo["url"], json={"title": title}, headers={**alice.headers, "If-Match": etag}
        )
        results[title] = response.status_code

    threads = [threading.Thread(target=write, args=(title,)) for title in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results.values()) == [200, 412], results
    winner = next(title for title, status in results.items() if status == 200)
    final = alice.get(todo["url"]).get_json()
    assert final["title"] == winner
    assert final["version"] == 2


@pytest.mark.parametrize("send_if_match", [False, True])
def test_edit_of_a_version_changed_behind_the_sessions_back_is_412(ctx, send_if_match):
    actor = register_user("carol", "carol@example.com", "long enough pw")
    todo_id = create_todo(actor, title="original").id
    loaded = visible_todo(actor, todo_id)
    assert loaded.version == 1
    # The If-Match the client read still matches what this session holds in memory...
    if_match = etag_of(loaded) if send_if_match else None
    # ...but another process commits its own edit between our read and our write.
    with db.engine.begin() as other:
        other.execute(
            update(Todo).where(Todo.id == todo_id).values(title="theirs", version=Todo.version + 1)
        )

    with pytest.raises(PreconditionFailedError):
        edit_todo(actor, todo_id, {"title": "mine"}, if_match=if_match)

    stored = db.session.get(Todo, todo_id, populate_existing=True)
    assert (stored.title, stored.version) == ("theirs", 2)
