"""api_tokens.last_used_at

When a token was last used, written coarsely (at most once per
TODOSCALE_TOKEN_LAST_USED_SECONDS per process); NULL until its first use.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("api_tokens", "last_used_at")
