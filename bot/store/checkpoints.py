"""Signed audit checkpoints, stored as they were signed."""

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select

from bot.domain.audit import utc_iso
from bot.domain.checkpoints import Checkpoint
from bot.store.audit_log import lock_chain
from bot.store.tables import audit_checkpoints


class SqlCheckpointRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, checkpoint: Checkpoint) -> None:
        lock_chain(self._connection)  # ids commit in order: the export cursor relies on it
        self._connection.execute(
            insert(audit_checkpoints).values(
                seq=checkpoint.seq,
                head_hash=checkpoint.head_hash,
                at=utc_iso(checkpoint.at),
                key_id=checkpoint.key_id,
                signature=checkpoint.signature,
            )
        )

    def last(self) -> Checkpoint | None:
        statement = select(audit_checkpoints).order_by(audit_checkpoints.c.id.desc()).limit(1)
        row = self._connection.execute(statement).one_or_none()
        return None if row is None else _from_row(row)

    def all(self) -> Iterator[Checkpoint]:
        statement = select(audit_checkpoints).order_by(audit_checkpoints.c.id)
        for row in self._connection.execute(statement):
            yield _from_row(row)

    def after(self, checkpoint_id: int, limit: int) -> Sequence[tuple[int, Checkpoint]]:
        statement = (
            select(audit_checkpoints)
            .where(audit_checkpoints.c.id > checkpoint_id)
            .order_by(audit_checkpoints.c.id)
            .limit(limit)
        )
        return [(row.id, _from_row(row)) for row in self._connection.execute(statement)]


def _from_row(row: object) -> Checkpoint:
    return Checkpoint(
        seq=row.seq,  # type: ignore[attr-defined]
        head_hash=row.head_hash,  # type: ignore[attr-defined]
        at=datetime.fromisoformat(row.at),  # type: ignore[attr-defined]
        key_id=row.key_id,  # type: ignore[attr-defined]
        signature=row.signature,  # type: ignore[attr-defined]
    )
