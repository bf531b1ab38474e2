"""Extensions of active access (with their decisions) and break-glass requests.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
USER_ID = sa.String(64)
STATE = sa.String(16)
MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "access_requests",
        sa.Column("break_glass", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("access_requests", sa.Column("reviewed_at", MOMENT, nullable=True))

    op.create_table(
        "access_extensions",
        sa.Column("id", ID, nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("requested_by", USER_ID, nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("requested_at", MOMENT, nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("eligible_approvers", sa.Text(), nullable=False),
        sa.Column("state", STATE, nullable=False),
        sa.Column("state_changed_at", MOMENT, nullable=True),
        sa.Column("previous_ends_at", MOMENT, nullable=True),
        sa.Column("new_ends_at", MOMENT, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_extensions"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_requests.id"],
            name="fk_access_extensions_request_id_access_requests",
        ),
    )
    op.create_index(
        "ix_access_extensions_request_id", "access_extensions", ["request_id"], unique=False
    )
    op.create_index("ix_access_extensions_state", "access_extensions", ["state"], unique=False)

    op.create_table(
        "extension_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("extension_id", ID, nullable=False),
        sa.Column("approver_id", USER_ID, nullable=False),
        sa.Column("verdict", STATE, nullable=False),
        sa.Column("decided_at", MOMENT, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_extension_decisions"),
        sa.ForeignKeyConstraint(
            ["extension_id"],
            ["access_extensions.id"],
            name="fk_extension_decisions_extension_id_access_extensions",
        ),
        sa.UniqueConstraint(
            "extension_id",
            "approver_id",
            name="uq_extension_decisions_extension_id_approver_id",
        ),
    )


def downgrade() -> None:
    op.drop_table("extension_decisions")
    op.drop_index("ix_access_extensions_state", table_name="access_extensions")
    op.drop_index("ix_access_extensions_request_id", table_name="access_extensions")
    op.drop_table("access_extensions")
    with op.batch_alter_table("access_requests") as requests:
        requests.drop_column("reviewed_at")
        requests.drop_column("break_glass")
