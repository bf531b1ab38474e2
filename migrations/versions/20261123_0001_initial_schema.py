"""Initial schema: incidents, access requests, decisions, grants and the audit chain.

On PostgreSQL a trigger makes audit_events append-only: UPDATE, DELETE and TRUNCATE raise.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
USER_ID = sa.String(64)
STATE = sa.String(16)
HASH = sa.String(64)
MOMENT = sa.DateTime(timezone=True)
AUDIT_MOMENT = sa.String(32)

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""

APPEND_ONLY_ROW_TRIGGER = """
CREATE TRIGGER audit_events_append_only
BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()
"""

APPEND_ONLY_TRUNCATE_TRIGGER = """
CREATE TRIGGER audit_events_no_truncate
BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()
"""


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", ID, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", STATE, nullable=False),
        sa.Column("commander_id", USER_ID, nullable=False),
        sa.Column("opened_by", USER_ID, nullable=False),
        sa.Column("opened_at", MOMENT, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("channel_name", sa.String(80), nullable=False),
        sa.Column("status", STATE, nullable=False),
        sa.Column("closed_at", MOMENT, nullable=True),
        sa.Column("closed_by", USER_ID, nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("channel_id", name="uq_incidents_channel_id"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])

    op.create_table(
        "access_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("resource", sa.String(200), nullable=False),
        sa.Column("requester_id", USER_ID, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("requested_at", MOMENT, nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("eligible_approvers", sa.Text(), nullable=False),
        sa.Column("state", STATE, nullable=False),
        sa.Column("state_changed_at", MOMENT, nullable=True),
        sa.Column("activated_at", MOMENT, nullable=True),
        sa.Column("ends_at", MOMENT, nullable=True),
        sa.Column("ended_at", MOMENT, nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("ended_by", USER_ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_requests"),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_access_requests_incident_id_incidents",
        ),
    )
    op.create_index(
        "ix_access_requests_incident_id_state", "access_requests", ["incident_id", "state"]
    )
    op.create_index(
        "ix_access_requests_state_requested_at", "access_requests", ["state", "requested_at"]
    )

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("approver_id", USER_ID, nullable=False),
        sa.Column("verdict", STATE, nullable=False),
        sa.Column("decided_at", MOMENT, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_requests.id"],
            name="fk_decisions_request_id_access_requests",
        ),
        sa.UniqueConstraint(
            "request_id", "approver_id", name="uq_decisions_request_id_approver_id"
        ),
    )

    op.create_table(
        "grants",
        sa.Column("id", ID, nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("resource", sa.String(200), nullable=False),
        sa.Column("requester_id", USER_ID, nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("ends_at", MOMENT, nullable=False),
        sa.Column("status", STATE, nullable=False),
        sa.Column("lease_id", sa.Text(), nullable=True),
        sa.Column("token_accessor", sa.String(200), nullable=True),
        sa.Column("issued_at", MOMENT, nullable=True),
        sa.Column("revoke_requested_at", MOMENT, nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("revoked_at", MOMENT, nullable=True),
        sa.Column("revoke_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_grants"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_requests.id"],
            name="fk_grants_request_id_access_requests",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_grants_incident_id_incidents"
        ),
        sa.UniqueConstraint("request_id", name="uq_grants_request_id"),
    )
    op.create_index("ix_grants_incident_id", "grants", ["incident_id"])
    op.create_index("ix_grants_status_ends_at", "grants", ["status", "ends_at"])

    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", AUDIT_MOMENT, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", USER_ID, nullable=True),
        sa.Column("incident_id", ID, nullable=True),
        sa.Column("request_id", ID, nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", HASH, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
        sa.UniqueConstraint("hash", name="uq_audit_events_hash"),
    )
    op.create_index("ix_audit_events_incident_id", "audit_events", ["incident_id"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(APPEND_ONLY_ROW_TRIGGER)
        op.execute(APPEND_ONLY_TRUNCATE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_refuse_change()")

    op.drop_index("ix_audit_events_incident_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_grants_status_ends_at", table_name="grants")
    op.drop_index("ix_grants_incident_id", table_name="grants")
    op.drop_table("grants")
    op.drop_table("decisions")
    op.drop_index("ix_access_requests_state_requested_at", table_name="access_requests")
    op.drop_index("ix_access_requests_incident_id_state", table_name="access_requests")
    op.drop_table("access_requests")
    op.drop_index("ix_incidents_status", table_name="incidents")
    op.drop_table("incidents")
