"""todos.notes_searchable and the full-text search index of todos

Search covers a todo's title and, unless its notes are encrypted (`notes_searchable`
false), its notes. Each engine gets its own index, kept in step by the database itself, so
every write path (the ORM, Core bulk inserts of imports and seeding, list deletion, the
cascade of a deleted user) keeps it right:

- SQLite: an FTS5 table whose external content is a view of what is searchable, and
  triggers on `todos`. Its rows are keyed by the rowid of `todos`; a migration that rebuilds
  `todos` (batch mode) must recreate the triggers and rebuild the index (`_SQLITE_UP`).
- PostgreSQL: a GIN index on the `tsvector` of the same text (`simple` configuration: no
  stemming or stop words, for any language). Queries use exactly this expression.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NOTES = "CASE WHEN {row}notes_searchable THEN {row}notes ELSE '' END"
_PG_DOCUMENT = (
    "to_tsvector('simple'::regconfig, title || ' ' || "
    "CASE WHEN notes_searchable THEN notes ELSE '' END)"
)

_SQLITE_UP = [
    # The searchable text of each todo; FTS5 reads it (by rowid) to rebuild and to delete.
    f"""CREATE VIEW todos_search_source AS
        SELECT rowid AS rid, title, {_NOTES.format(row="")} AS notes FROM todos""",
    """CREATE VIRTUAL TABLE todos_fts USING fts5(
        title, notes, content='todos_search_source', content_rowid='rid',
        tokenize='unicode61 remove_diacritics 0')""",
    f"""CREATE TRIGGER todos_fts_insert AFTER INSERT ON todos BEGIN
        INSERT INTO todos_fts(rowid, title, notes)
        VALUES (new.rowid, new.title, {_NOTES.format(row="new.")});
    END""",
    f"""CREATE TRIGGER todos_fts_delete AFTER DELETE ON todos BEGIN
        INSERT INTO todos_fts(todos_fts, rowid, title, notes)
        VALUES ('delete', old.rowid, old.title, {_NOTES.format(row="old.")});
    END""",
    # Only when what is indexed changed: ticking a todo done costs the index nothing.
    f"""CREATE TRIGGER todos_fts_update AFTER UPDATE OF title, notes, notes_searchable ON todos
        WHEN old.title IS NOT new.title
          OR {_NOTES.format(row="old.")} IS NOT {_NOTES.format(row="new.")}
    BEGIN
        INSERT INTO todos_fts(todos_fts, rowid, title, notes)
        VALUES ('delete', old.rowid, old.title, {_NOTES.format(row="old.")});
        INSERT INTO todos_fts(rowid, title, notes)
        VALUES (new.rowid, new.title, {_NOTES.format(row="new.")});
    END""",
    "INSERT INTO todos_fts(todos_fts) VALUES ('rebuild')",
]

_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS todos_fts_update",
    "DROP TRIGGER IF EXISTS todos_fts_delete",
    "DROP TRIGGER IF EXISTS todos_fts_insert",
    "DROP TABLE IF EXISTS todos_fts",
    "DROP VIEW IF EXISTS todos_search_source",
]


def upgrade() -> None:
    op.add_column(
        "todos",
        sa.Column("notes_searchable", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX ix_todos_search ON todos USING gin ({_PG_DOCUMENT})")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_todos_search")
    with op.batch_alter_table("todos") as batch:
        batch.drop_column("notes_searchable")
