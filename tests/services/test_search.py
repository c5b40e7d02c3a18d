"""services.search: full-text search over titles and notes, on SQLite (FTS5) and PostgreSQL
(a GIN index on a tsvector), kept in step with every write path; titles only when notes
are encrypted."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from todoscale.exceptions import BadRequestError, NotFoundError
from todoscale.extensions import db
from todoscale.models import Todo, User
from todoscale.services import jobs, lists, search, seeding, todos, transfer
from todoscale.services.accounts import register_user


def _titles(actor: User, query: str, **options: object) -> list[str]:
    return [row.title for row in search.search_todos(actor, query, **options).items]


@pytest.fixture
def people(ctx):
    """Two users who share nothing."""
    return (
        register_user("sally", "sally@example.com", "long enough pw"),
        register_user("sam", "sam@example.com", "long enough pw"),
    )


def _analyze() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("ANALYZE todos"))
        db.session.commit()


def test_a_word_of_a_title_or_of_notes_finds_the_todo_among_10000_never_another_users(ctx):
    owner, stranger = (
        db.session.scalars(select(User).where(User.username == name)).one()
        for name in seeding.seed(users=2, todos=10_000, password="long enough pw", prefix="s")
    )
    inbox = lists.default_list_id(owner)
    todos.create_todo(owner, title="Renew the passport", list_id=inbox)
    todos.create_todo(owner, title="Call the office", notes="ask about the zeppelin tickets")
    todos.create_todo(stranger, title="Passport photos", notes="zeppelin museum")
    _analyze()

    assert _titles(owner, "passport") == ["Renew the passport"]
    assert _titles(owner, "Zeppelin") == ["Call the office"]
    assert _titles(stranger, "passport zeppelin") == ["Passport photos"]
    assert _titles(owner, "number 7777") == ["Todo number 7777"]

    plan = search.search_plan(owner, "zeppelin")
    if db.session.get_bind().dialect.name == "sqlite":
        # The matches come from FTS5 first, each todo by its rowid; no walk of a list.
        assert "SCAN todos_fts VIRTUAL TABLE INDEX" in plan.splitlines()[0], plan
        assert "ix_todos_list_created" not in plan, plan
    else:
        assert "ix_todos_search" in plan, plan


def test_every_word_must_match_as_a_whole_word_in_any_case(people):
    sally, _ = people
    todos.create_todo(sally, title="Buy oat MILK", notes="two litres")
    todos.create_todo(sally, title="Milk the cow")
    assert sorted(_titles(sally, "milk")) == ["Buy oat MILK", "Milk the cow"]
    assert _titles(sally, "milk litres") == ["Buy oat MILK"]
    assert _titles(sally, "milk, the!") == ["Milk the cow"]
    assert _titles(sally, "mil") == [] and _titles(sally, "ilk") == []


def test_search_syntax_in_a_query_is_taken_as_words(people):
    sally, _ = people
    todos.create_todo(sally, title="Fix the NEAR OR AND bug")
    for query in (
        '"near',
        "near*",
        "title:near",
        "near OR x",
        "'near':* | x",
        "a & b",
        "(near)",
        "a'b",
    ):
        search.search_todos(sally, query)  # never a syntax error of the engine
    assert _titles(sally, '"near') == ["Fix the NEAR OR AND bug"]
    assert _titles(sally, "title:near") == []  # both words are needed; no todo has 'title'


def test_results_are_newest_first_and_paged_by_keyset_both_ways(people):
    sally, _ = people
    for n in range(25):
        todos.create_todo(sally, title=f"Report {n:02d}")
    first = search.search_todos(sally, "report", limit=10)
    assert [row.title for row in first.items] == [f"Report {n:02d}" for n in range(24, 14, -1)]
    assert first.newer_cursor is None and first.next_cursor
    todos.create_todo(sally, title="Report late")  # a new match does not shift the pages
    second = search.search_todos(sally, "report", limit=10, cursor=first.next_cursor)
    assert [row.title for row in second.items] == [f"Report {n:02d}" for n in range(14, 4, -1)]
    third = search.search_todos(sally, "report", limit=10, cursor=second.next_cursor)
    assert [row.title for row in third.items] == [f"Report {n:02d}" for n in range(4, -1, -1)]
    assert third.next_cursor is None and third.newer_cursor
    back = search.search_todos(sally, "report", limit=10, before=third.newer_cursor)
    assert back.items == second.items and back.newer_cursor
    up = search.search_todos(sally, "report", limit=10, before=back.newer_cursor)
    assert up.items == first.items and up.newer_cursor  # "Report late" is newer still
    top = search.search_todos(sally, "report", limit=10, before=up.newer_cursor)
    assert top.items[0].title == "Report late" and top.newer_cursor is None


def test_filters_by_list_and_completion(people):
    sally, sam = people
    errands = lists.create_list(sally, "Errands").todo_list.id
    done = todos.create_todo(sally, title="Post the letter", list_id=errands)
    todos.complete_todo(sally, done.id)
    todos.create_todo(sally, title="Post the parcel")
    assert _titles(sally, "post", list_id=errands) == ["Post the letter"]
    assert _titles(sally, "post", completed=False) == ["Post the parcel"]
    with pytest.raises(NotFoundError):
        search.search_todos(sam, "post", list_id=errands)


@pytest.mark.parametrize(
    "query", ["", "   ", "!!! ---", "_", "x" * (search.QUERY_MAX + 1), "a\x00"]
)
def test_a_query_without_words_or_too_long_is_refused(people, query):
    with pytest.raises(BadRequestError):
        search.search_todos(people[0], query)


def test_the_index_follows_edits_moves_deletes_and_list_deletion(people):
    sally, sam = people
    groceries = lists.create_list(sally, "Groceries").todo_list.id
    todo = todos.create_todo(sally, title="Buy apples", list_id=groceries, notes="green ones")
    todos.edit_todo(sally, todo.id, {"title": "Buy pears", "notes": "ripe ones"})
    assert _titles(sally, "apples") == [] and _titles(sally, "green") == []
    assert _titles(sally, "pears ripe") == ["Buy pears"]
    todos.complete_todo(sally, todo.id)  # an update that leaves the indexed text alone
    assert _titles(sally, "pears") == ["Buy pears"]

    lists.share_list(sally, groceries, username="sam")
    assert _titles(sam, "pears") == ["Buy pears"]
    lists.remove_member(sally, groceries, username="sam")
    assert _titles(sam, "pears") == []

    other = todos.create_todo(sally, title="Buy plums")
    todos.delete_todo(sally, other.id)
    assert _titles(sally, "plums") == []
    lists.delete_list(sally, groceries)
    assert _titles(sally, "pears") == []
    assert _index_rows("pears") == 0


def _index_rows(word: str) -> int:
    """Rows of the full-text index itself (not joined to todos) that hold `word`."""
    if db.session.get_bind().dialect.name == "sqlite":
        query = text("SELECT count(*) FROM todos_fts WHERE todos_fts MATCH :word")
        return int(db.session.scalar(query, {"word": f'"{word}"'}) or 0)
    document = search._PG_DOCUMENT
    query = (
        select(func.count())
        .select_from(Todo.__table__)
        .where(document.op("@@")(func.to_tsquery(text("'simple'::regconfig"), word)))
    )
    return int(db.session.scalar(query) or 0)


def test_imported_todos_are_found(people):
    sally, _ = people
    blank = dict.fromkeys(transfer.FIELDS)
    data = transfer.render(
        [
            {**blank, "list": "L", "title": f"Imported kiwi {n}", "notes": "from the file"}
            for n in range(3)
        ],
        "csv",
    )
    job = jobs.create_import(
        sally, list_id=lists.default_list_id(sally), filename="a.csv", data=data
    )
    jobs.run_job(job.id, worker_name="test")
    assert len(_titles(sally, "kiwi file")) == 3


def test_encrypted_notes_are_never_indexed_and_search_covers_titles(people, encrypted_notes):
    sally, _ = people
    todos.create_todo(sally, title="Dentist", notes="gAAAAABciphertextlooking")
    todos.create_todo(sally, title="Secret meeting", notes="quokka")
    results = search.search_todos(sally, "secret")
    assert [row.title for row in results.items] == ["Secret meeting"]
    assert results.notes_searched is False
    assert _titles(sally, "quokka") == [] and _titles(sally, "gAAAAABciphertextlooking") == []
    assert _index_rows("quokka") == 0
    assert db.session.scalar(select(func.count()).where(Todo.notes_searchable)) == 0


def test_notes_written_in_plain_text_are_searched(people):
    sally, _ = people
    todos.create_todo(sally, title="Dentist", notes="quokka")
    results = search.search_todos(sally, "quokka")
    assert [row.title for row in results.items] == ["Dentist"]
    assert results.notes_searched is True
