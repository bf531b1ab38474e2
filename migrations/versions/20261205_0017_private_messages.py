"""Private messages kept, and expiry warnings once per end.

`slack_private_messages` remembers where each direct message about a request is (an
approver's task and reminder, the requester's credential message), so that it is redrawn in
place when the request is decided or the access ends. `access_requests.expiry_warned_for` is
the end the requester was last warned of: one warning per end, a new one after an extension.

Both are additions: the previous release runs on this schema unchanged.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "access_requests",
        sa.Column("expiry_warned_for", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "slack_private_messages",
        sa.Column(
            "request_id", sa.String(64), sa.ForeignKey("access_requests.id"), primary_key=True
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_private_messages")
    with op.batch_alter_table("access_requests") as requests:
        requests.drop_column("expiry_warned_for")
