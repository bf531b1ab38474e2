"""The audit chain in the `audit_events` table: one chain, contiguous sequence numbers.

Appends are serialized so that two writers never read the same head: PostgreSQL takes a
transaction-scoped advisory lock first; on SQLite every transaction already began with
BEGIN IMMEDIATE and holds the only write lock.
"""

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select

from bot.domain.audit import (
    AuditEntry,
    AuditEvent,
    ChainLink,
    canonical_event,
    canonical_json,
    next_in_chain,
    utc_iso,
)
from bot.domain.events import DomainEvent
from bot.store.tables import audit_events

AUDIT_CHAIN_LOCK = 0x6761_7465_6175_6474
"""The advisory lock key of the audit chain (the ASCII bytes of "gateaudt")."""

STREAM_BATCH = 1000


def lock_chain(connection: Connection) -> None:
    """Hold the audit chain until the transaction ends: what is appended under it (events,
    checkpoints) commits in the order it was numbered, so an export cursor never skips a row."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(AUDIT_CHAIN_LOCK)))


class SqlAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def append(self, event: DomainEvent) -> AuditEvent:
        """Seal the event's entry after the chain's head, under the chain's lock."""
        entry = event.to_entry()
        lock_chain(self._connection)
        sealed = next_in_chain(entry, self.head())
        self._connection.execute(
            insert(audit_events).values(
                seq=sealed.seq,
                at=utc_iso(entry.at),
                action=entry.action,
                actor=entry.actor,
                incident_id=entry.incident_id,
                request_id=entry.request_id,
                data=canonical_json(entry.data).decode("utf-8"),
                prev_hash=sealed.prev_hash,
                hash=sealed.hash,
            )
        )
        return sealed

    def events(
        self, *, incident_id: str | None = None, after_seq: int = 0, limit: int | None = None
    ) -> Iterator[AuditEvent]:
        """Events in sequence order, fetched in batches (a server-side cursor on PostgreSQL).

        Consume the iterator inside the unit of work that produced it.
        """
        statement = select(audit_events).where(audit_events.c.seq > after_seq)
        if incident_id is not None:
            statement = statement.where(audit_events.c.incident_id == incident_id)
        statement = statement.order_by(audit_events.c.seq)
        if limit is not None:
            statement = statement.limit(limit)
        else:
            statement = statement.execution_options(yield_per=STREAM_BATCH)
        for row in self._connection.execute(statement):
            yield _event_from_row(row)

    def chain_links(self, *, after_seq: int = 0) -> Iterator[ChainLink]:
        """What verification needs, hashed straight from the stored columns.

        The `data` column is used as stored, not parsed and re-serialized: the hash covers the
        exact text in the database, and a verifier walks a million rows in seconds.
        """
        columns = audit_events.c
        statement = (
            select(
                columns.seq,
                columns.prev_hash,
                columns.hash,
                columns.action,
                columns.actor,
                columns.at,
                columns.data,
                columns.incident_id,
                columns.request_id,
            )
            .where(columns.seq > after_seq)
            .order_by(columns.seq)
            .execution_options(yield_per=STREAM_BATCH)
        )
        for (
            seq,
            prev_hash,
            hash_,
            action,
            actor,
            at,
            data,
            incident_id,
            request_id,
        ) in self._connection.execute(statement):
            body = canonical_event(
                action=action,
                actor=actor,
                at=at,
                data_json=data,
                incident_id=incident_id,
                request_id=request_id,
            )
            yield ChainLink(seq, prev_hash, hash_, body)

    def head(self) -> AuditEvent | None:
        statement = select(audit_events).order_by(audit_events.c.seq.desc()).limit(1)
        row = self._connection.execute(statement).one_or_none()
        return None if row is None else _event_from_row(row)


def _event_from_row(row: Row[Any]) -> AuditEvent:
    entry = AuditEntry(
        action=row.action,
        at=datetime.fromisoformat(row.at),
        actor=row.actor,
        incident_id=row.incident_id,
        request_id=row.request_id,
        data=json.loads(row.data),
    )
    return AuditEvent(seq=row.seq, entry=entry, prev_hash=row.prev_hash, hash=row.hash)
