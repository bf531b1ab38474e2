"""Deliver the audit trail (events and signed checkpoints) to the audit sinks, in order.

Each run, for each sink: claim its cursor (SKIP LOCKED on PostgreSQL, so replicas running the
same job never send to one sink at once), read the records after it, commit the claim, send
without holding a transaction, then move the cursor past what the sink took, or record the
failure and back off (bot.domain.export). A claim lasts `CLAIM_FOR`, far longer than a send
takes with the adapters' timeouts (5 s to connect, 10 s per read or write); a worker that died
holding one is replaced when it runs out. A send slower than the claim loses it: its batch may
then go out twice, which the records' ids let a receiver recognize (at-least-once).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.errors import SinkError
from bot.domain.export import Backlog, ExportRecord, next_batch
from bot.domain.ports import AuditSink, UnitOfWorkFactory
from bot.services.common import random_token

BATCH = 100
BATCHES_PER_RUN = 20
CLAIM_FOR = timedelta(minutes=2)


@dataclass
class SinkDelivery:
    """What one run did for one sink."""

    sink: str
    delivered: int = 0
    error: SinkError | None = None
    attempts: int = 0  # consecutive failures, this one included
    next_attempt_at: datetime | None = None


def export_audit(
    *,
    uow: UnitOfWorkFactory,
    sinks: Sequence[AuditSink],
    clock: Callable[[], datetime],
    batch: int = BATCH,
    batches_per_run: int = BATCHES_PER_RUN,
) -> list[SinkDelivery]:
    """Send each sink what it has not received, up to `batches_per_run` batches of `batch`.

    Stops at a sink's first failure; it is tried again once its backoff has passed.
    """
    return [
        _deliver(uow, sink, clock, batch=batch, batches_per_run=batches_per_run) for sink in sinks
    ]


def export_backlog(*, uow: UnitOfWorkFactory, sinks: Sequence[str]) -> dict[str, Backlog]:
    with uow() as tx:
        return {sink: tx.sink_cursors.backlog(sink) for sink in sinks}


def _deliver(
    uow: UnitOfWorkFactory,
    sink: AuditSink,
    clock: Callable[[], datetime],
    *,
    batch: int,
    batches_per_run: int,
) -> SinkDelivery:
    delivery = SinkDelivery(sink.name)
    for _ in range(batches_per_run):
        claimed = _claim(uow, sink.name, clock(), batch)
        if claimed is None:
            break
        claim, records = claimed
        try:
            sink.send(records)
        except SinkError as error:
            _settle(uow, sink.name, claim, records, error, clock(), delivery)
            break
        _settle(uow, sink.name, claim, records, None, clock(), delivery)
        if len(records) < batch:
            break
    return delivery


def _claim(
    uow: UnitOfWorkFactory, sink: str, now: datetime, batch: int
) -> tuple[str, list[ExportRecord]] | None:
    """Claim the sink and read its next batch; None when busy elsewhere, backing off, or done."""
    with uow() as tx:
        cursor = tx.sink_cursors.lock(sink, skip_locked=True)
        if cursor is None or not cursor.ready(now):
            return None
        records = next_batch(
            list(tx.audit.events(after_seq=cursor.event_seq, limit=batch)),
            tx.checkpoints.after(cursor.checkpoint_id, batch),
            delivered_seq=cursor.event_seq,
            limit=batch,
        )
        if not records:
            return None
        claim = random_token()
        tx.sink_cursors.save(cursor.claim(claim, until=now + CLAIM_FOR))
        tx.commit()
    return claim, records


def _settle(
    uow: UnitOfWorkFactory,
    sink: str,
    claim: str,
    records: Sequence[ExportRecord],
    error: SinkError | None,
    now: datetime,
    delivery: SinkDelivery,
) -> None:
    """Move the cursor past `records`, or record `error`; only while the claim is still ours."""
    with uow() as tx:
        cursor = tx.sink_cursors.lock(sink)
        if cursor is None or cursor.claimed_by != claim:
            return  # the claim ran out and another worker took the sink over: it sends again
        if error is None:
            tx.sink_cursors.save(cursor.delivered(records, now=now))
            delivery.delivered += len(records)
        else:
            failed = cursor.failed(error, now=now)
            tx.sink_cursors.save(failed)
            delivery.error = error
            delivery.attempts = failed.attempts
            delivery.next_attempt_at = failed.next_attempt_at
        tx.commit()
