"""One access lifecycle: when access ends, and why, is kept once, on its request.

A grant recorded its own `ends_at` and `revoke_reason` beside its request's `ends_at` and
`end_reason`, and every change had to move both. The request is the access (state, end, end
reason); the grant only records the credential. Before the grant's columns go, an active
request takes the earlier of the two ends wherever they disagree, so access never ends later
than either recorded. Due expiries and the expiry timers now find active access by its
request's end (`ix_access_requests_state_ends_at`).

`access_requests.notify_pending`, unused since revision 0014 (the notifier's cursor), goes with
its partial index.

This revision drops columns the previous release reads: stop its pods before upgrading
(docs/operations.md, Upgrading).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An active request takes its active grant's end where that is earlier (they agree unless
    # something went wrong: access never ends later than either recorded).
    op.execute(
        "UPDATE access_requests SET ends_at = ("
        "SELECT g.ends_at FROM grants g WHERE g.request_id = access_requests.id "
        "AND g.status = 'active') "
        "WHERE state = 'active' AND EXISTS ("
        "SELECT 1 FROM grants g WHERE g.request_id = access_requests.id "
        "AND g.status = 'active' "
        "AND (access_requests.ends_at IS NULL OR g.ends_at < access_requests.ends_at))"
    )
    op.drop_index("ix_grants_status_ends_at", table_name="grants")
    with op.batch_alter_table("grants") as grants:
        grants.drop_column("ends_at")
        grants.drop_column("revoke_reason")
    op.drop_index("ix_access_requests_notify_pending", table_name="access_requests")
    with op.batch_alter_table("access_requests") as requests:
        requests.drop_column("notify_pending")
    op.create_index("ix_access_requests_state_ends_at", "access_requests", ["state", "ends_at"])


def downgrade() -> None:
    op.drop_index("ix_access_requests_state_ends_at", table_name="access_requests")
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
    op.add_column("grants", sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("grants", sa.Column("revoke_reason", sa.Text(), nullable=True))
    # An issued credential ends with its request; an attempt that failed, or one still being
    # issued, kept no end of its own: it ends when its revocation was asked, or at its start.
    op.execute(
        "UPDATE grants SET ends_at = COALESCE("
        "CASE WHEN grants.status IN ('active', 'revoking', 'revoked') THEN "
        "(SELECT r.ends_at FROM access_requests r WHERE r.id = grants.request_id) END, "
        "grants.revoke_requested_at, grants.created_at)"
    )
    op.execute(
        "UPDATE grants SET revoke_reason = "
        "(SELECT r.end_reason FROM access_requests r WHERE r.id = grants.request_id) "
        "WHERE grants.revoke_requested_at IS NOT NULL"
    )
    with op.batch_alter_table("grants") as grants:
        grants.alter_column("ends_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("ix_grants_status_ends_at", "grants", ["status", "ends_at"])
