"""indexes for the retention purge

jobs.finished_at, api_tokens.expires_at, sessions.created_at, notifications.created_at:
beat's purge finds what outlived its retention by index, not by reading whole tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_jobs_finished_at", "jobs", "finished_at"),
    ("ix_api_tokens_expires_at", "api_tokens", "expires_at"),
    ("ix_sessions_created_at", "sessions", "created_at"),
    ("ix_notifications_created_at", "notifications", "created_at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _column in INDEXES:
        op.drop_index(name, table_name=table)
