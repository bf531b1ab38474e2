"""Slack requests already accepted: a signature or an event id seen twice is a replay or a retry.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_request_keys",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_slack_request_keys"),
    )
    op.create_index("ix_slack_request_keys_seen_at", "slack_request_keys", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_request_keys_seen_at", table_name="slack_request_keys")
    op.drop_table("slack_request_keys")
