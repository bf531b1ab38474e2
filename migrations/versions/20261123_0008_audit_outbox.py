"""Audit export: one cursor per audit sink over the append-only audit tables (the outbox).

The events and checkpoints themselves are the outbox, append-only since 0001 and 0004. The only
thing that changes is delivery bookkeeping, and on PostgreSQL a trigger keeps that honest: a
cursor moves forward only, never past the last event or checkpoint, and is never deleted or
truncated (a rewound cursor would send the trail again, a deleted one would start it over).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENT = sa.DateTime(timezone=True)

FORWARD_ONLY_FUNCTION = """
CREATE FUNCTION audit_sink_cursors_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'audit_sink_cursors: % refused, a cursor is kept', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.sink <> OLD.sink OR NEW.event_seq < OLD.event_seq
                             OR NEW.checkpoint_id < OLD.checkpoint_id) THEN
        RAISE EXCEPTION 'audit_sink_cursors: a cursor only moves forward'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.event_seq > COALESCE((SELECT max(seq) FROM audit_events), 0)
       OR NEW.checkpoint_id > COALESCE((SELECT max(id) FROM audit_checkpoints), 0) THEN
        RAISE EXCEPTION 'audit_sink_cursors: a cursor cannot pass the end of the trail'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$
"""

FORWARD_ONLY_ROW_TRIGGER = """
CREATE TRIGGER audit_sink_cursors_forward_only
BEFORE INSERT OR UPDATE OR DELETE ON audit_sink_cursors
FOR EACH ROW EXECUTE FUNCTION audit_sink_cursors_forward_only()
"""

NO_TRUNCATE_TRIGGER = """
CREATE TRIGGER audit_sink_cursors_no_truncate
BEFORE TRUNCATE ON audit_sink_cursors
FOR EACH STATEMENT EXECUTE FUNCTION audit_sink_cursors_forward_only()
"""


def upgrade() -> None:
    op.create_table(
        "audit_sink_cursors",
        sa.Column("sink", sa.String(32), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", MOMENT, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_delivered_at", MOMENT, nullable=True),
        sa.Column("claimed_by", sa.String(16), nullable=True),
        sa.Column("claimed_until", MOMENT, nullable=True),
        sa.PrimaryKeyConstraint("sink", name="pk_audit_sink_cursors"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FORWARD_ONLY_FUNCTION)
        op.execute(FORWARD_ONLY_ROW_TRIGGER)
        op.execute(NO_TRUNCATE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_sink_cursors_no_truncate ON audit_sink_cursors")
        op.execute("DROP TRIGGER IF EXISTS audit_sink_cursors_forward_only ON audit_sink_cursors")
        op.execute("DROP FUNCTION IF EXISTS audit_sink_cursors_forward_only()")
    op.drop_table("audit_sink_cursors")
