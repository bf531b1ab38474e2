"""Export order, cursors and backoff, and the delivery use case on the in-memory store."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.audit import AuditEntry, AuditEvent, next_in_chain
from bot.domain.checkpoints import Checkpoint
from bot.domain.errors import SinkError, SinkMisconfigured, SinkUnavailable
from bot.domain.export import (
    ExportRecord,
    RecordKind,
    SinkCursor,
    next_batch,
    retry_delay,
)
from bot.domain.incident import Severity
from bot.services import incidents
from bot.services.audit_export import CLAIM_FOR, export_audit, export_backlog
from bot.services.checkpoints import sign_checkpoint
from integrations.audit_signing import Ed25519Signer, new_key
from tests.sink_support import Clock, expected_ids, produce
from tests.unit.fakes import MemoryStore

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SIGNER = Ed25519Signer(new_key()[0])


def chain(count: int) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    for number in range(count):
        entry = AuditEntry("request.filed", T0 + timedelta(seconds=number))
        events.append(next_in_chain(entry, events[-1] if events else None))
    return events


def checkpoint(seq: int) -> Checkpoint:
    return Checkpoint(seq, "h" * 64, T0, "key", "sig")


def ids(records: Sequence[ExportRecord]) -> list[str]:
    return [record.id for record in records]


def test_checkpoints_follow_the_event_they_cover_and_keep_their_order() -> None:
    events = chain(5)
    checkpoints = [(1, checkpoint(0)), (2, checkpoint(2)), (3, checkpoint(2)), (4, checkpoint(5))]
    batch = next_batch(events, checkpoints, delivered_seq=0, limit=100)
    assert ids(batch) == [
        "checkpoint-1",
        "event-1",
        "event-2",
        "checkpoint-2",
        "checkpoint-3",
        "event-3",
        "event-4",
        "event-5",
        "checkpoint-4",
    ]


def test_a_checkpoint_waits_for_its_event_and_stops_later_ones() -> None:
    """Concurrent signers: checkpoint 1 covers event 4, checkpoint 2 covers event 3."""
    events = chain(4)
    checkpoints = [(1, checkpoint(4)), (2, checkpoint(3))]
    first = next_batch(events[:2], checkpoints, delivered_seq=0, limit=2)
    assert ids(first) == ["event-1", "event-2"], "nothing may pass checkpoint 1"
    second = next_batch(events[2:], checkpoints, delivered_seq=2, limit=10)
    assert ids(second) == ["event-3", "event-4", "checkpoint-1", "checkpoint-2"]


def test_a_checkpoint_read_before_its_event_was_visible_waits() -> None:
    """On PostgreSQL events and checkpoints are read in two statements: event 3 and its
    checkpoint may both commit in between, so the checkpoint is seen and the event is not."""
    batch = next_batch(chain(2), [(1, checkpoint(3))], delivered_seq=0, limit=10)
    assert ids(batch) == ["event-1", "event-2"]
    assert next_batch([], [(1, checkpoint(3))], delivered_seq=2, limit=10) == []


def test_the_limit_cuts_a_prefix() -> None:
    batch = next_batch(chain(3), [(1, checkpoint(1))], delivered_seq=0, limit=2)
    assert ids(batch) == ["event-1", "checkpoint-1"]


@given(
    event_count=st.integers(0, 25),
    covered=st.lists(st.integers(0, 25), max_size=12),
    limit=st.integers(1, 8),
)
def test_batch_after_batch_every_record_goes_once_and_in_order(
    event_count: int, covered: list[int], limit: int
) -> None:
    events = chain(event_count)
    checkpoints = [(n, checkpoint(min(seq, event_count))) for n, seq in enumerate(covered, 1)]
    cursor = SinkCursor("sink")
    stream: list[ExportRecord] = []
    for _ in range(100):
        batch = next_batch(
            events[cursor.event_seq : cursor.event_seq + limit],
            checkpoints[cursor.checkpoint_id : cursor.checkpoint_id + limit],
            delivered_seq=cursor.event_seq,
            limit=limit,
        )
        if not batch:
            break
        assert len(batch) <= limit
        stream += batch
        cursor = cursor.delivered(batch, now=T0)
    assert [r.position for r in stream if r.kind is RecordKind.EVENT] == list(
        range(1, event_count + 1)
    )
    assert [r.position for r in stream if r.kind is RecordKind.CHECKPOINT] == list(
        range(1, len(checkpoints) + 1)
    )
    seen_seq = 0
    for record in stream:
        if record.kind is RecordKind.EVENT:
            seen_seq = record.seq
        else:
            assert record.seq <= seen_seq, f"{record.id} went before the event it covers"


def test_backoff_doubles_to_five_minutes_and_configuration_errors_wait_five_minutes() -> None:
    delays = [retry_delay(n, misconfigured=False).total_seconds() for n in range(1, 9)]
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]
    assert retry_delay(1, misconfigured=True) == timedelta(minutes=5)
    assert retry_delay(10_000, misconfigured=False) == timedelta(minutes=5)


def test_a_cursor_stays_put_on_failure_and_forgets_failures_on_delivery() -> None:
    cursor = SinkCursor("sink", event_seq=3, checkpoint_id=1).claim("me", until=T0 + CLAIM_FOR)
    assert not cursor.ready(T0)
    failed = cursor.failed(SinkUnavailable("down"), now=T0).failed(SinkUnavailable("x"), now=T0)
    assert (failed.event_seq, failed.checkpoint_id, failed.attempts) == (3, 1, 2)
    assert failed.next_attempt_at == T0 + timedelta(seconds=10)
    assert failed.claimed_by is None and failed.last_error == "x"
    assert not failed.ready(T0 + timedelta(seconds=9)) and failed.ready(T0 + timedelta(seconds=10))
    batch = next_batch(chain(5)[3:], [(2, checkpoint(4))], delivered_seq=3, limit=10)
    done = failed.delivered(batch, now=T0)
    assert (done.event_seq, done.checkpoint_id, done.attempts, done.last_error) == (5, 2, 0, None)
    assert done.ready(T0) and done.last_delivered_at == T0


class RecordingSink:
    """An AuditSink that keeps what it was sent, or fails as told."""

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.batches: list[list[str]] = []
        self.failure: SinkError | None = None

    def send(self, records: Sequence[ExportRecord]) -> None:
        if self.failure is not None:
            raise self.failure
        self.batches.append(ids(records))

    def received(self) -> list[str]:
        return [record for batch in self.batches for record in batch]


def test_delivers_events_and_checkpoints_in_batches_and_never_twice() -> None:
    store, sink, clock = MemoryStore(), RecordingSink(), Clock(T0)
    incidents.start_incident(
        uow=store, title="db", severity=Severity.SEV2, opened_by="U1",
        channel_id="C1", channel_name="inc-db", now=T0,
    )  # fmt: skip
    produce(store, 4, clock)
    assert sign_checkpoint(uow=store, signer=SIGNER, now=T0) is not None
    (delivery,) = export_audit(uow=store, sinks=[sink], clock=clock, batch=2)
    assert delivery.delivered == 6 and delivery.error is None
    assert sink.batches == [
        ["event-1", "event-2"],
        ["event-3", "event-4"],
        ["event-5", "checkpoint-1"],
    ]
    assert export_audit(uow=store, sinks=[sink], clock=clock, batch=2)[0].delivered == 0
    assert len(sink.batches) == 3
    assert export_backlog(uow=store, sinks=[sink.name])[sink.name].records == 0


def test_a_failing_sink_keeps_everything_and_backs_off_on_its_own() -> None:
    store, clock = MemoryStore(), Clock(T0)
    down, healthy = RecordingSink("down"), RecordingSink("healthy")
    down.failure = SinkUnavailable("connection refused")
    produce(store, 3, clock)
    first, other = export_audit(uow=store, sinks=[down, healthy], clock=clock)
    assert (first.delivered, first.attempts, first.error) == (0, 1, down.failure)
    assert first.next_attempt_at == clock() + timedelta(seconds=5)
    assert other.delivered == 3, "one sink down does not hold the others back"
    backlog = export_backlog(uow=store, sinks=["down"])["down"]
    assert (backlog.records, backlog.oldest_at) == (3, T0 + timedelta(seconds=1))
    assert backlog.oldest_age(T0 + timedelta(minutes=1)) == timedelta(seconds=59)

    down.failure = None
    clock.advance(seconds=4)
    assert export_audit(uow=store, sinks=[down], clock=clock)[0].delivered == 0, "backing off"
    assert down.batches == []
    clock.advance(seconds=1)
    assert export_audit(uow=store, sinks=[down], clock=clock)[0].delivered == 3
    assert down.received() == expected_ids(3)
    assert store.state.sink_cursors["down"].attempts == 0


def test_a_configuration_error_is_retried_every_five_minutes_never_dropped() -> None:
    store, sink, clock = MemoryStore(), RecordingSink(), Clock(T0)
    sink.failure = SinkMisconfigured("401: check GATEHOUSE_AUDIT_WEBHOOK_SECRET")
    produce(store, 2, clock)
    for attempt in (1, 2, 3):
        (delivery,) = export_audit(uow=store, sinks=[sink], clock=clock)
        assert delivery.attempts == attempt
        assert delivery.next_attempt_at == clock.now + timedelta(minutes=5)
        clock.advance(minutes=5)
    cursor = store.state.sink_cursors[sink.name]
    assert cursor.event_seq == 0 and cursor.last_error == sink.failure.message
    sink.failure = None
    assert export_audit(uow=store, sinks=[sink], clock=clock)[0].delivered == 2


def test_a_sink_claimed_by_another_worker_is_left_alone() -> None:
    store, sink, clock = MemoryStore(), RecordingSink(), Clock(T0)
    produce(store, 2, clock)
    claimed = SinkCursor(sink.name).claim("other", until=T0 + timedelta(seconds=30))
    store.state.sink_cursors[sink.name] = claimed
    assert export_audit(uow=store, sinks=[sink], clock=clock)[0].delivered == 0
    assert sink.batches == []
    clock.advance(seconds=30)
    assert export_audit(uow=store, sinks=[sink], clock=clock)[0].delivered == 2, "claim ran out"


def test_a_worker_whose_claim_was_taken_over_does_not_move_the_cursor() -> None:
    store, clock = MemoryStore(), Clock(T0)
    produce(store, 2, clock)

    class SlowSink(RecordingSink):
        def send(self, records: Sequence[ExportRecord]) -> None:
            super().send(records)
            cursor = store.state.sink_cursors[self.name]
            store.state.sink_cursors[self.name] = replace(cursor, claimed_by="successor")

    sink = SlowSink()
    assert export_audit(uow=store, sinks=[sink], clock=clock)[0].delivered == 0
    cursor = store.state.sink_cursors[sink.name]
    assert (cursor.event_seq, cursor.claimed_by) == (0, "successor")


@pytest.mark.parametrize("failure", [SinkUnavailable("x"), SinkMisconfigured("y")])
def test_the_first_failure_ends_the_run_for_that_sink(failure: SinkError) -> None:
    store, clock = MemoryStore(), Clock(T0)
    produce(store, 5, clock)

    class FailsSecond(RecordingSink):
        def send(self, records: Sequence[ExportRecord]) -> None:
            if self.batches:
                raise failure
            super().send(records)

    sink = FailsSecond()
    (delivery,) = export_audit(uow=store, sinks=[sink], clock=clock, batch=2)
    assert (delivery.delivered, delivery.error) == (2, failure)
    assert store.state.sink_cursors[sink.name].event_seq == 2
