"""Audit export: what an audit sink receives, in what order, and when a failed sink is retried.

The audit trail is its own outbox. Every event is written in the transaction of the change it
records, and appends are serialized, so event sequence numbers commit in order; checkpoints are
appended under the same lock, so their ids commit in order too. Each sink keeps a cursor: the
last event seq and the last checkpoint id it accepted. A sink that is down loses nothing (its
cursor waits), and when it returns it receives everything after its cursor, in order.

Order per sink: events by sequence number; each checkpoint after the event it covers, checkpoints
in the order they were signed. Delivery is at-least-once: a batch the sink accepted just before
the process died (before the cursor moved) is sent again, so a receiver deduplicates on each
record's `id` (`event-<seq>`, `checkpoint-<n>`). In normal operation nothing is sent twice.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.audit import AuditEvent, utc_iso
from bot.domain.backoff import retry_wait
from bot.domain.checkpoints import Checkpoint
from bot.domain.errors import SinkError, SinkMisconfigured

FIRST_RETRY_AFTER = timedelta(seconds=5)
LONGEST_RETRY_WAIT = timedelta(minutes=5)
MISCONFIGURED_RETRY_AFTER = timedelta(minutes=5)


class RecordKind(StrEnum):
    EVENT = "audit_event"
    CHECKPOINT = "audit_checkpoint"


@dataclass(frozen=True)
class ExportRecord:
    kind: RecordKind
    position: int  # what the sink's cursor counts: the event's seq, or the checkpoint's id
    seq: int  # the chain position: the event's own, or the one a checkpoint covers
    at: datetime
    body: Mapping[str, Any]  # the JSON object a sink receives

    @property
    def id(self) -> str:
        return str(self.body["id"])


def event_json(event: AuditEvent) -> dict[str, Any]:
    """An event as exported: every hashed field, its position and its links."""
    entry = event.entry
    return {
        "seq": event.seq,
        "at": utc_iso(entry.at),
        "action": entry.action,
        "actor": entry.actor,
        "incident_id": entry.incident_id,
        "request_id": entry.request_id,
        "data": dict(entry.data),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def event_record(event: AuditEvent) -> ExportRecord:
    body = {"type": RecordKind.EVENT.value, "id": f"event-{event.seq}", **event_json(event)}
    return ExportRecord(RecordKind.EVENT, event.seq, event.seq, event.entry.at, body)


def checkpoint_record(position: int, checkpoint: Checkpoint) -> ExportRecord:
    """A signed checkpoint as exported: a receiver checks `signature` (Ed25519, hex) over the
    canonical JSON of seq, head_hash, at and key_id (`Checkpoint.message`)."""
    body = {
        "type": RecordKind.CHECKPOINT.value,
        "id": f"checkpoint-{position}",
        "seq": checkpoint.seq,
        "head_hash": checkpoint.head_hash,
        "at": utc_iso(checkpoint.at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }
    return ExportRecord(RecordKind.CHECKPOINT, position, checkpoint.seq, checkpoint.at, body)


def next_batch(
    events: Sequence[AuditEvent],
    checkpoints: Sequence[tuple[int, Checkpoint]],
    *,
    delivered_seq: int,
    limit: int,
) -> list[ExportRecord]:
    """The next records for a sink, at most `limit`.

    `events` and `checkpoints` ((id, checkpoint) pairs) are what follows the sink's cursor, each
    in its own order. Checkpoints keep their signing order and each waits for the event it covers:
    one covering an event not in this batch stops the checkpoints here, so what is taken from
    each list is always a prefix, and the cursor can never skip a record.
    """
    batch: list[ExportRecord] = []
    pending_events = iter(events)
    last_seq = delivered_seq
    for position, checkpoint in checkpoints:
        while checkpoint.seq > last_seq and len(batch) < limit:
            event = next(pending_events, None)
            if event is None:
                break
            batch.append(event_record(event))
            last_seq = event.seq
        if checkpoint.seq > last_seq or len(batch) >= limit:
            break
        batch.append(checkpoint_record(position, checkpoint))
    for event in pending_events:
        if len(batch) >= limit:
            break
        batch.append(event_record(event))
    return batch


def retry_delay(attempts: int, *, misconfigured: bool) -> timedelta:
    """5 s, 10 s, 20 s... up to 5 minutes; a sink that refuses our settings every 5 minutes."""
    if misconfigured:
        return MISCONFIGURED_RETRY_AFTER
    return retry_wait(attempts, first=FIRST_RETRY_AFTER, longest=LONGEST_RETRY_WAIT)


@dataclass(frozen=True)
class SinkCursor:
    """How far one sink got, and its retry state.

    A worker claims the cursor for the time of one send (`claimed_by` until `claimed_until`), so
    other replicas leave the sink alone meanwhile; a worker that died loses its claim when it
    runs out.
    """

    sink: str
    event_seq: int = 0
    checkpoint_id: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    last_delivered_at: datetime | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None

    def ready(self, now: datetime) -> bool:
        """Neither backing off after a failure nor claimed by a worker that is still sending."""
        backing_off = self.next_attempt_at is not None and self.next_attempt_at > now
        claimed = self.claimed_until is not None and self.claimed_until > now
        return not backing_off and not claimed

    def claim(self, token: str, *, until: datetime) -> "SinkCursor":
        return replace(self, claimed_by=token, claimed_until=until)

    def delivered(self, batch: Sequence[ExportRecord], *, now: datetime) -> "SinkCursor":
        """The sink took `batch`: move past it and forget the failures."""
        events = [r.position for r in batch if r.kind is RecordKind.EVENT]
        checkpoints = [r.position for r in batch if r.kind is RecordKind.CHECKPOINT]
        return replace(
            self,
            event_seq=max([self.event_seq, *events]),
            checkpoint_id=max([self.checkpoint_id, *checkpoints]),
            attempts=0,
            next_attempt_at=None,
            last_error=None,
            last_delivered_at=now,
            claimed_by=None,
            claimed_until=None,
        )

    def failed(self, error: SinkError, *, now: datetime) -> "SinkCursor":
        """The sink refused or could not be reached: stay put and back off."""
        attempts = self.attempts + 1
        misconfigured = isinstance(error, SinkMisconfigured)
        return replace(
            self,
            attempts=attempts,
            next_attempt_at=now + retry_delay(attempts, misconfigured=misconfigured),
            last_error=error.message,
            claimed_by=None,
            claimed_until=None,
        )


@dataclass(frozen=True)
class Backlog:
    """What a sink has not received yet."""

    records: int
    oldest_at: datetime | None

    def oldest_age(self, now: datetime) -> timedelta:
        return now - self.oldest_at if self.oldest_at is not None else timedelta(0)
