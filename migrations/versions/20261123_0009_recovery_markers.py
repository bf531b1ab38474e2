"""What a stopped process may leave half done: outcomes not yet told in Slack, close summaries
not yet posted, channels not yet archived.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "access_requests",
        sa.Column("notify_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_access_requests_notify_pending",
        "access_requests",
        ["notify_pending"],
        sqlite_where=sa.text("notify_pending"),
        postgresql_where=sa.text("notify_pending"),
    )
    op.add_column(
        "incidents",
        sa.Column("summary_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "incidents",
        sa.Column("archive_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("incidents") as incidents:
        incidents.drop_column("archive_pending")
        incidents.drop_column("summary_pending")
    op.drop_index("ix_access_requests_notify_pending", table_name="access_requests")
    with op.batch_alter_table("access_requests") as requests:
        requests.drop_column("notify_pending")
