"""Audit sink cursors: how far each sink got, and its retry state (bot.domain.export).

On PostgreSQL a trigger lets a cursor move forward only, never past the trail's end, and refuses
deleting one (migration 0008): bookkeeping cannot re-send or hide part of the trail by accident.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain.export import Backlog, SinkCursor
from bot.store.tables import audit_checkpoints, audit_events, audit_sink_cursors

_COLUMNS = audit_sink_cursors.c


class SqlSinkCursorRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def lock(self, sink: str, *, skip_locked: bool = False) -> SinkCursor | None:
        self._add_if_missing(sink)
        statement = (
            select(audit_sink_cursors)
            .where(_COLUMNS.sink == sink)
            .with_for_update(skip_locked=skip_locked)
        )
        row = self._connection.execute(statement).one_or_none()
        return None if row is None else _from_row(row)

    def add_at_head(self, sink: str) -> None:
        head = self._connection.execute(select(func.max(audit_events.c.seq))).scalar() or 0
        self._add_if_missing(sink, event_seq=head)

    def save(self, cursor: SinkCursor) -> None:
        self._connection.execute(
            update(audit_sink_cursors)
            .where(_COLUMNS.sink == cursor.sink)
            .values(
                event_seq=cursor.event_seq,
                checkpoint_id=cursor.checkpoint_id,
                attempts=cursor.attempts,
                next_attempt_at=cursor.next_attempt_at,
                last_error=cursor.last_error,
                last_delivered_at=cursor.last_delivered_at,
                claimed_by=cursor.claimed_by,
                claimed_until=cursor.claimed_until,
            )
        )

    def backlog(self, sink: str) -> Backlog:
        row = self._connection.execute(
            select(_COLUMNS.event_seq, _COLUMNS.checkpoint_id).where(_COLUMNS.sink == sink)
        ).one_or_none()
        event_seq, checkpoint_id = (row.event_seq, row.checkpoint_id) if row else (0, 0)
        head_seq = self._connection.execute(select(func.max(audit_events.c.seq))).scalar() or 0
        next_event_at = self._connection.execute(
            select(audit_events.c.at).where(audit_events.c.seq == event_seq + 1)
        ).scalar()
        checkpoints, first_checkpoint_at = self._connection.execute(
            select(func.count(), func.min(audit_checkpoints.c.at)).where(
                audit_checkpoints.c.id > checkpoint_id
            )
        ).one()
        moments = [datetime.fromisoformat(at) for at in (next_event_at, first_checkpoint_at) if at]
        return Backlog(max(head_seq - event_seq, 0) + checkpoints, min(moments, default=None))

    def _add_if_missing(self, sink: str, *, event_seq: int = 0) -> None:
        """Insert only when absent: an INSERT meeting another transaction's new row would wait."""
        exists = select(_COLUMNS.sink).where(_COLUMNS.sink == sink)
        if self._connection.execute(exists).first() is not None:
            return
        dialect = postgresql if self._connection.dialect.name == "postgresql" else sqlite
        self._connection.execute(
            dialect.insert(audit_sink_cursors)
            .values(sink=sink, event_seq=event_seq, checkpoint_id=0, attempts=0)
            .on_conflict_do_nothing(index_elements=[_COLUMNS.sink])
        )


def _from_row(row: Row[Any]) -> SinkCursor:
    return SinkCursor(
        sink=row.sink,
        event_seq=row.event_seq,
        checkpoint_id=row.checkpoint_id,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        last_delivered_at=row.last_delivered_at,
        claimed_by=row.claimed_by,
        claimed_until=row.claimed_until,
    )
