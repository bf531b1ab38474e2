"""Vault: incident token accessors, wrapping accessors, and a new grant after a failed issue.

A grant whose issue failed (Vault down) no longer blocks a retry: only one *live* grant per
request is unique now, through a partial unique index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_GRANT = sa.text("status <> 'failed'")


def upgrade() -> None:
    with op.batch_alter_table("grants") as grants:
        grants.drop_constraint("uq_grants_request_id", type_="unique")
        grants.add_column(sa.Column("wrapping_accessor", sa.String(200), nullable=True))
    op.create_index(
        "uq_grants_live_request_id",
        "grants",
        ["request_id"],
        unique=True,
        sqlite_where=LIVE_GRANT,
        postgresql_where=LIVE_GRANT,
    )
    op.create_table(
        "vault_tokens",
        sa.Column("accessor", sa.String(200), nullable=False),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("accessor", name="pk_vault_tokens"),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_vault_tokens_incident_id_incidents"
        ),
    )
    op.create_index("ix_vault_tokens_incident_id", "vault_tokens", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_vault_tokens_incident_id", table_name="vault_tokens")
    op.drop_table("vault_tokens")
    op.drop_index("uq_grants_live_request_id", table_name="grants")
    with op.batch_alter_table("grants") as grants:
        grants.drop_column("wrapping_accessor")
        grants.create_unique_constraint("uq_grants_request_id", ["request_id"])
