"""Due work chosen in SQL: when a failed issue is tried again, and indexes for the due queries.

A failed attempt now records `retry_at`, when its request is to be issued again; attempts that
failed before this revision are due at once. The revocation retries are found by status and
`revoke_retry_at`, the issue retries by request and `retry_at`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("grants", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE grants SET retry_at = ends_at WHERE status = 'failed'")
    op.create_index("ix_grants_status_revoke_retry_at", "grants", ["status", "revoke_retry_at"])
    op.create_index("ix_grants_request_id_retry_at", "grants", ["request_id", "retry_at"])


def downgrade() -> None:
    op.drop_index("ix_grants_request_id_retry_at", table_name="grants")
    op.drop_index("ix_grants_status_revoke_retry_at", table_name="grants")
    with op.batch_alter_table("grants") as grants:
        grants.drop_column("retry_at")
