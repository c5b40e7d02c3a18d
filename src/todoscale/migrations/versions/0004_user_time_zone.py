"""users.time_zone

The IANA time zone a user chose for the web UI; NULL follows the browser's.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: SQLite (3.35 and later) adds and drops a column in
# place, where batch mode would rebuild the table and lose the expression index on
# lower(username).
def upgrade() -> None:
    op.add_column("users", sa.Column("time_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "time_zone")
