"""Slack: where each incident's pinned card and each request's approval card live.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("card_ts", sa.String(32), nullable=True))
    op.add_column("access_requests", sa.Column("card_ts", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_requests") as requests:
        requests.drop_column("card_ts")
    with op.batch_alter_table("incidents") as incidents:
        incidents.drop_column("card_ts")
