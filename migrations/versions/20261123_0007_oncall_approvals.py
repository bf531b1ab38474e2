"""Requests remember their approvers by group (for the card) and why on-call approved them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("access_requests", sa.Column("approver_labels", sa.Text(), nullable=True))
    op.add_column("access_requests", sa.Column("auto_approved_because", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_requests") as requests:
        requests.drop_column("auto_approved_because")
        requests.drop_column("approver_labels")
