"""What people are told follows the audit chain: the Slack notifier's cursor, and a request's
mark narrowed to "issued, not yet handed over".

`notify_pending` marked any outcome not yet shown in Slack; the notifier now follows the chain
with a cursor instead, so the column keeps only its other meaning, a credential issued and not
yet delivered, under the name `awaiting_delivery` (true only on ACTIVE requests). The cursor
starts at the chain's head: what happened before this revision was told the old way.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFIER = "slack-notifier"


def upgrade() -> None:
    op.drop_index("ix_access_requests_notify_pending", table_name="access_requests")
    op.execute("UPDATE access_requests SET notify_pending = false WHERE state <> 'active'")
    with op.batch_alter_table("access_requests") as requests:
        requests.alter_column("notify_pending", new_column_name="awaiting_delivery")
    op.create_index(
        "ix_access_requests_awaiting_delivery",
        "access_requests",
        ["awaiting_delivery"],
        sqlite_where=sa.text("awaiting_delivery"),
        postgresql_where=sa.text("awaiting_delivery"),
    )
    op.execute(
        sa.text(
            "INSERT INTO audit_sink_cursors (sink, event_seq, checkpoint_id, attempts) "
            "SELECT :name, COALESCE(MAX(seq), 0), 0, 0 FROM audit_events "
            "WHERE NOT EXISTS (SELECT 1 FROM audit_sink_cursors WHERE sink = :name)"
        ).bindparams(name=NOTIFIER)
    )


def downgrade() -> None:
    # The notifier's cursor stays: cursors are never deleted (migration 0008), and an upgrade
    # again resumes from it.
    op.drop_index("ix_access_requests_awaiting_delivery", table_name="access_requests")
    with op.batch_alter_table("access_requests") as requests:
        requests.alter_column("awaiting_delivery", new_column_name="notify_pending")
    op.create_index(
        "ix_access_requests_notify_pending",
        "access_requests",
        ["notify_pending"],
        sqlite_where=sa.text("notify_pending"),
        postgresql_where=sa.text("notify_pending"),
    )
