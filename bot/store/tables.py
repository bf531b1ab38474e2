"""The schema, as SQLAlchemy Core tables on one MetaData (what Alembic compares against).

Enums are stored as their string values; the repositories map rows to domain objects.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from bot.store.column_types import JsonGroupMap, JsonStringSet, Seconds, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = String(64)
USER_ID = String(64)
STATE = String(16)
HASH = String(64)
AUDIT_MOMENT = String(32)
LIVE_GRANT = "status <> 'failed'"

incidents = Table(
    "incidents",
    metadata,
    Column("id", ID, primary_key=True),
    Column("title", Text, nullable=False),
    Column("severity", STATE, nullable=False),
    Column("commander_id", USER_ID, nullable=False),
    Column("opened_by", USER_ID, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    # NULL until the incident's Slack channel is made (the row is committed first).
    Column("channel_id", ID, unique=True),
    Column("channel_name", String(80)),
    Column("status", STATE, nullable=False, index=True),
    Column("closed_at", UtcDateTime),
    Column("closed_by", USER_ID),
    Column("resolution", Text),
    Column("card_ts", String(32)),
    Column("summary_pending", Boolean, nullable=False, server_default=false()),
    Column("archive_pending", Boolean, nullable=False, server_default=false()),
)

access_requests = Table(
    "access_requests",
    metadata,
    Column("id", ID, primary_key=True),
    Column("incident_id", ID, ForeignKey("incidents.id"), nullable=False),
    Column("resource", String(200), nullable=False),
    Column("requester_id", USER_ID, nullable=False),
    Column("reason", Text, nullable=False),
    Column("duration_seconds", Seconds, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("eligible_approvers", JsonStringSet, nullable=False),
    Column("state", STATE, nullable=False),
    Column("state_changed_at", UtcDateTime),
    Column("activated_at", UtcDateTime),
    Column("ends_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("end_reason", Text),
    Column("ended_by", USER_ID),
    Column("card_ts", String(32)),
    Column("reminded_at", UtcDateTime),
    Column("break_glass", Boolean, nullable=False, server_default=text("false")),
    Column("reviewed_at", UtcDateTime),
    Column("approver_labels", JsonGroupMap),
    Column("auto_approved_because", Text),
    Column("awaiting_delivery", Boolean, nullable=False, server_default=false()),
    Column("expiry_warned_for", UtcDateTime),
    Index("ix_access_requests_incident_id_state", "incident_id", "state"),
    Index("ix_access_requests_state_requested_at", "state", "requested_at"),
    # Due expiries and expiry timers: active access by its end (the one record of it).
    Index("ix_access_requests_state_ends_at", "state", "ends_at"),
    Index(
        "ix_access_requests_awaiting_delivery",
        "awaiting_delivery",
        sqlite_where=text("awaiting_delivery"),
        postgresql_where=text("awaiting_delivery"),
    ),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", ID, ForeignKey("access_requests.id"), nullable=False),
    Column("approver_id", USER_ID, nullable=False),
    Column("verdict", STATE, nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("reason", Text),
    UniqueConstraint("request_id", "approver_id"),
)

access_extensions = Table(
    "access_extensions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("request_id", ID, ForeignKey("access_requests.id"), nullable=False, index=True),
    Column("requested_by", USER_ID, nullable=False),
    Column("duration_seconds", Seconds, nullable=False),
    Column("reason", Text),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("eligible_approvers", JsonStringSet, nullable=False),
    Column("state", STATE, nullable=False, index=True),
    Column("state_changed_at", UtcDateTime),
    Column("previous_ends_at", UtcDateTime),
    Column("new_ends_at", UtcDateTime),
    Column("note", Text),
)

extension_decisions = Table(
    "extension_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("extension_id", ID, ForeignKey("access_extensions.id"), nullable=False),
    Column("approver_id", USER_ID, nullable=False),
    Column("verdict", STATE, nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("reason", Text),
    UniqueConstraint("extension_id", "approver_id"),
)

grants = Table(
    "grants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("request_id", ID, ForeignKey("access_requests.id"), nullable=False),
    Column("incident_id", ID, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("resource", String(200), nullable=False),
    Column("requester_id", USER_ID, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("status", STATE, nullable=False),
    Column("lease_id", Text),
    Column("token_accessor", String(200)),
    Column("wrapping_accessor", String(200)),
    Column("issued_at", UtcDateTime),
    Column("revoke_requested_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("revoke_attempts", Integer, nullable=False),
    Column("revoke_retry_at", UtcDateTime),
    Column("last_error", Text),
    Column("retry_at", UtcDateTime),
    Index("ix_grants_status_revoke_retry_at", "status", "revoke_retry_at"),
    Index("ix_grants_request_id_retry_at", "request_id", "retry_at"),
    # One live grant per request: a failed attempt (Vault down) may be followed by another.
    Index(
        "uq_grants_live_request_id",
        "request_id",
        unique=True,
        sqlite_where=text(LIVE_GRANT),
        postgresql_where=text(LIVE_GRANT),
    ),
)

vault_tokens = Table(
    "vault_tokens",
    metadata,
    # Accessors of the incident tokens every process made, recorded before the token is used.
    Column("accessor", String(200), primary_key=True),
    Column("incident_id", ID, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    # The instant exactly as hashed (utc_iso): ISO 8601 in UTC, sortable as text.
    Column("at", AUDIT_MOMENT, nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor", USER_ID),
    Column("incident_id", ID, index=True),
    Column("request_id", ID),
    # canonical_json(data), kept as TEXT so the database never re-normalizes what was hashed.
    Column("data", Text, nullable=False),
    Column("prev_hash", HASH, nullable=False),
    Column("hash", HASH, nullable=False, unique=True),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False, index=True),
    Column("head_hash", HASH, nullable=False),
    Column("at", AUDIT_MOMENT, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("signature", String(128), nullable=False),
)

audit_sink_cursors = Table(
    "audit_sink_cursors",
    metadata,
    # One row per audit sink: the last event seq and checkpoint id it accepted (the audit
    # tables are the outbox), its failures and backoff, and the worker sending to it now.
    Column("sink", String(32), primary_key=True),
    Column("event_seq", BigInteger, nullable=False),
    Column("checkpoint_id", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime),
    Column("last_error", Text),
    Column("last_delivered_at", UtcDateTime),
    Column("claimed_by", String(16)),
    Column("claimed_until", UtcDateTime),
)

slack_private_messages = Table(
    "slack_private_messages",
    metadata,
    # Where each direct message about a request is (an approver's task or reminder, the
    # requester's credential message), so the notifier can redraw it when the request moves
    # on: one per request, kind and user.
    Column("request_id", ID, ForeignKey("access_requests.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("user_id", USER_ID, primary_key=True),
    Column("channel_id", String(32), nullable=False),
    Column("ts", String(32), nullable=False),
)

slack_request_keys = Table(
    "slack_request_keys",
    metadata,
    # One row per Slack request signature and per Events API event id accepted in the last
    # minutes (SHA-256 hex of a prefixed key): the primary key makes every replica agree that
    # a second sighting is a replay or a retry. Swept once older than the replay window.
    Column("key", HASH, primary_key=True),
    Column("seen_at", UtcDateTime, nullable=False, index=True),
)

DECISION_UNIQUE = "uq_decisions_request_id_approver_id"
EXTENSION_DECISION_UNIQUE = "uq_extension_decisions_extension_id_approver_id"
GRANT_REQUEST_UNIQUE = "uq_grants_live_request_id"
