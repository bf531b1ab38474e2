"""An incident is recorded before its Slack channel exists: its channel columns may be NULL.

`/incident open` commits the incident first, then makes the channel and attaches it in a second
transaction; until then (or until recovery makes it, when Slack failed or the process stopped in
between) the row has no channel. The unique constraint on `channel_id` stays: NULLs never
collide.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as incidents:
        incidents.alter_column("channel_id", existing_type=sa.String(64), nullable=True)
        incidents.alter_column("channel_name", existing_type=sa.String(80), nullable=True)


def downgrade() -> None:
    # An incident still without its channel cannot be kept under the old schema: it never
    # reached Slack, so nothing but its row (and its audit events) knew of it.
    op.execute("DELETE FROM incidents WHERE channel_id IS NULL")
    with op.batch_alter_table("incidents") as incidents:
        incidents.alter_column("channel_id", existing_type=sa.String(64), nullable=False)
        incidents.alter_column("channel_name", existing_type=sa.String(80), nullable=False)
