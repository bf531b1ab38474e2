"""Audit export with several replicas on PostgreSQL: one sender per sink at a time, in order."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from bot.domain.checkpoints import Checkpoint
from bot.domain.events import RequestFiled
from bot.services.audit_export import SinkDelivery, export_audit, export_backlog
from bot.store import SqlUnitOfWorkFactory
from integrations.sinks import WebhookSink
from tests.emulators.sinks import SinkReceiver, running_receiver
from tests.sink_support import Clock, expected_ids, produce

pytestmark = pytest.mark.postgres


@pytest.fixture
def uow(postgres_engine: Engine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(postgres_engine)


@pytest.fixture
def receiver() -> Iterator[SinkReceiver]:
    with running_receiver() as running:
        yield running


def test_skip_locked_passes_over_a_sink_another_replica_holds(uow: SqlUnitOfWorkFactory) -> None:
    for sink in ("webhook", "splunk"):
        with uow() as tx:
            assert tx.sink_cursors.lock(sink) is not None
            tx.commit()
    with uow() as holder:
        assert holder.sink_cursors.lock("webhook") is not None
        started = time.monotonic()
        with uow() as other:
            assert other.sink_cursors.lock("webhook", skip_locked=True) is None
            assert other.sink_cursors.lock("splunk", skip_locked=True) is not None
        assert time.monotonic() - started < 1, "SKIP LOCKED does not wait"


def test_two_replicas_deliver_in_order_without_duplicates(
    uow: SqlUnitOfWorkFactory, receiver: SinkReceiver
) -> None:
    """Two workers run the export job in a loop while events are being written; the sink is
    slow, so their runs overlap. Each event arrives once, in sequence order."""
    total = 150
    receiver.delay = 0.005
    clock = Clock(datetime.now(UTC))
    writing = threading.Event()
    writing.set()
    deliveries: dict[str, list[SinkDelivery]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def replica(name: str) -> None:
        sink = WebhookSink(receiver.webhook_url, receiver.webhook_secret)
        try:
            while writing.is_set() or export_backlog(uow=uow, sinks=["webhook"])["webhook"].records:
                deliveries[name] += export_audit(uow=uow, sinks=[sink], clock=clock, batch=7)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            sink.close()

    workers = [threading.Thread(target=replica, args=(name,)) for name in deliveries]
    for worker in workers:
        worker.start()
    produce(uow, total, Clock(clock()))
    writing.clear()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors
    assert receiver.accepted_ids() == expected_ids(total)
    assert receiver.rejected == []
    delivered = {name: sum(d.delivered for d in runs) for name, runs in deliveries.items()}
    assert sum(delivered.values()) == total
    assert all(delivered.values()), f"both replicas took part: {delivered}"


def test_a_cursor_only_moves_forward_and_is_never_deleted(
    uow: SqlUnitOfWorkFactory, postgres_engine: Engine
) -> None:
    produce(uow, 3, Clock(datetime.now(UTC)))
    with uow() as tx:
        tx.checkpoints.add(Checkpoint(3, "0" * 64, datetime.now(UTC), "key", "sig"))
        cursor = tx.sink_cursors.lock("webhook")
        assert cursor is not None
        tx.commit()
    statements = {
        "UPDATE audit_sink_cursors SET event_seq = 2, checkpoint_id = 1": None,
        "UPDATE audit_sink_cursors SET event_seq = 1": "only moves forward",
        "UPDATE audit_sink_cursors SET checkpoint_id = 0": "only moves forward",
        "UPDATE audit_sink_cursors SET sink = 'splunk'": "only moves forward",
        "UPDATE audit_sink_cursors SET event_seq = 4": "cannot pass the end",
        "UPDATE audit_sink_cursors SET checkpoint_id = 2": "cannot pass the end",
        "DELETE FROM audit_sink_cursors": "DELETE refused",
        "TRUNCATE audit_sink_cursors": "TRUNCATE refused",
        "INSERT INTO audit_sink_cursors (sink, event_seq, checkpoint_id, attempts) "
        "VALUES ('splunk', 9, 0, 0)": "cannot pass the end",
    }
    for statement, refusal in statements.items():
        with postgres_engine.begin() as connection:
            if refusal is None:
                connection.execute(text(statement))
                continue
            with pytest.raises(DBAPIError, match=refusal):
                connection.execute(text(statement))
    with uow() as tx:
        assert tx.sink_cursors.backlog("webhook").records == 1


def test_a_checkpoint_waits_for_an_open_append_so_ids_commit_in_order(
    uow: SqlUnitOfWorkFactory,
) -> None:
    appended = threading.Event()
    release = threading.Event()

    def slow_append() -> None:
        with uow() as tx:
            tx.audit.append(RequestFiled(at=datetime.now(UTC)))
            appended.set()
            release.wait(5)
            tx.commit()

    writer = threading.Thread(target=slow_append)
    writer.start()
    assert appended.wait(5)
    added = threading.Event()

    def checkpoint() -> None:
        with uow() as tx:
            tx.checkpoints.add(Checkpoint(0, "0" * 64, datetime.now(UTC), "key", "sig"))
            tx.commit()
        added.set()

    signer = threading.Thread(target=checkpoint)
    signer.start()
    assert not added.wait(0.5), "the checkpoint went in while an append held the chain"
    release.set()
    writer.join(5)
    signer.join(5)
    assert added.is_set()
