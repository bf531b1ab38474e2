"""What people are told follows the audit chain: the Slack notifier's cursor, and a request's
mark of a credential issued but not yet handed over.

`notify_pending` marked any outcome not yet shown in Slack; the notifier now follows the chain
with a cursor instead, and `awaiting_delivery` keeps the mark's other meaning: a credential
issued and not yet delivered (true only on ACTIVE requests). `notify_pending` stays, unused, so
that pods of the previous release keep working during a rolling upgrade. The cursor starts at
the chain's head: what happened before this revision was told the old way.

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
    op.add_column(
        "access_requests",
        sa.Column("awaiting_delivery", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE access_requests SET awaiting_delivery = true "
        "WHERE notify_pending AND state = 'active'"
    )
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
        requests.drop_column("awaiting_delivery")
