"""The audit chain in the `audit_events` table: one chain, contiguous sequence numbers.

Appends are serialized so that two writers never read the same head: PostgreSQL takes a
transaction-scoped advisory lock first; on SQLite every transaction already began with
BEGIN IMMEDIATE and holds the only write lock.
"""

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    LargeBinary,
    Row,
    Text,
    cast,
    func,
    insert,
    literal,
    select,
)

from bot.domain.audit import (
    AuditEntry,
    AuditEvent,
    ChainLink,
    ChainRow,
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
CHAIN_BATCH = 10_000
"""Rows a verifier fetches at a time: a few MB, and few round trips to a server cursor."""
_LITERAL_BINDS = {"literal_binds": True}


def lock_chain(connection: Connection) -> None:
    """Hold the audit chain until the transaction ends: what is appended under it (events,
    checkpoints) commits in the order it was numbered, so an export cursor never skips a row."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(AUDIT_CHAIN_LOCK)))


class SqlAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._dialect = connection.dialect.name
        # Once a transaction holds the chain, its own last append is the head: one lock and
        # one read per transaction, however many events it records.
        self._holding_chain = False
        self._head: AuditEvent | None = None

    def append(self, event: DomainEvent) -> AuditEvent:
        """Seal the event's entry after the chain's head, under the chain's lock (taken by a
        transaction's first append and held to its end)."""
        entry = event.to_entry()
        if not self._holding_chain:
            lock_chain(self._connection)
            self._head = self.head()
            self._holding_chain = True
        sealed = next_in_chain(entry, self._head)
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
        self._head = sealed
        return sealed

    def transaction_ended(self) -> None:
        """Forget the head this transaction appended to: the next one locks and reads it."""
        self._holding_chain = False
        self._head = None

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
        """The chain as stored, each event with the canonical bytes its hash covers."""
        for row in self.chain_rows(after_seq=after_seq):
            yield ChainLink(*row)

    def chain_rows(self, *, after_seq: int = 0) -> Iterator[ChainRow]:
        """(seq, prev_hash, hash, canonical bytes) in sequence order, for `verify_rows`.

        The database assembles each event's canonical JSON from its stored columns (`data` as
        stored, the texts JSON-quoted), so a verifier neither builds an object per row nor
        re-serializes anything: it hashes the bytes as they arrive, a batch at a time (a
        server-side cursor on PostgreSQL). Where the database quotes a text differently from
        `canonical_event`, the hash misses and `canonical` assembles that one event again.
        """
        columns = audit_events.c
        statement = (
            select(columns.seq, columns.prev_hash, columns.hash, _canonical_sql(self._dialect))
            .where(columns.seq > after_seq)
            .order_by(columns.seq)
        )
        sql = str(
            statement.compile(dialect=self._connection.dialect, compile_kwargs=_LITERAL_BINDS)
        )
        if not self._connection.in_transaction():
            self._connection.begin()  # the unit of work ends it; the cursor lives inside it
        driver: Any = self._connection.connection.driver_connection
        # The driver's own tuples: no Row object and no result processing per event, a batch
        # at a time (a named, server-side cursor on PostgreSQL, so memory stays flat).
        cursor = (
            driver.cursor(name="gatehouse_chain")
            if self._dialect == "postgresql"
            else (driver.cursor())
        )
        try:
            cursor.execute(sql)
            while batch := cursor.fetchmany(CHAIN_BATCH):
                yield from batch
        finally:
            cursor.close()

    def canonical(self, seq: int) -> bytes:
        """The canonical bytes of one stored event, assembled in Python from its columns."""
        columns = audit_events.c
        row = self._connection.execute(
            select(
                columns.action,
                columns.actor,
                columns.at,
                columns.data,
                columns.incident_id,
                columns.request_id,
            ).where(columns.seq == seq)
        ).one()
        return canonical_event(
            action=row.action,
            actor=row.actor,
            at=row.at,
            data_json=row.data,
            incident_id=row.incident_id,
            request_id=row.request_id,
        )

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


def _canonical_sql(dialect: str) -> ColumnElement[bytes]:
    """`canonical_event` as SQL: the same keys in the same order, each text JSON-quoted the way
    `json.dumps(..., ensure_ascii=False)` quotes it, NULL as `null`, `data` as stored."""
    columns = audit_events.c

    def quoted(column: ColumnElement[str]) -> ColumnElement[str]:
        if dialect == "postgresql":
            return func.coalesce(cast(func.to_json(column), Text), literal("null"))
        return func.json_quote(column)  # SQLite: json_quote(NULL) is 'null'

    text_form = (
        literal('{"action":')
        + quoted(columns.action)
        + literal(',"actor":')
        + quoted(columns.actor)
        + literal(',"at":')
        + quoted(columns.at)
        + literal(',"data":')
        + columns.data
        + literal(',"incident_id":')
        + quoted(columns.incident_id)
        + literal(',"request_id":')
        + quoted(columns.request_id)
        + literal("}")
    )
    if dialect == "postgresql":
        return func.convert_to(text_form, literal("UTF8"), type_=LargeBinary)
    return cast(text_form, LargeBinary)
