"""Audit export end to end: the real adapters, a real loopback sink, SQLite and PostgreSQL.

The sink goes down (stopped, then busy with 503) while events keep coming; when it is back,
every event and checkpoint arrives exactly once, in order, signed, and the receiver can verify
the chain and the checkpoints from what it received alone.
"""

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from bot import metrics
from bot.bootstrap import export_audit_to_sinks
from bot.domain.audit import canonical_event, canonical_json, chain_hash
from bot.domain.checkpoints import Checkpoint
from bot.domain.errors import SinkMisconfigured, SinkUnavailable
from bot.domain.incident import Severity
from bot.services import incidents
from bot.services.audit_export import export_audit, export_backlog
from bot.services.checkpoints import sign_checkpoint
from bot.slack import notifier
from bot.store import SqlUnitOfWorkFactory
from bot.store.tables import audit_sink_cursors
from integrations.audit_signing import Ed25519Checker, Ed25519Signer, new_key
from integrations.sinks import SplunkHecSink, WebhookSink
from tests.emulators.sinks import SinkReceiver, running_receiver
from tests.integration.builders import T0
from tests.sink_support import Clock, expected_ids, produce

PRIVATE, PUBLIC = new_key()
SIGNER, CHECKER = Ed25519Signer(PRIVATE), Ed25519Checker(PUBLIC)


@pytest.fixture
def receiver() -> Iterator[SinkReceiver]:
    with running_receiver(allowed_indexes=frozenset({"security"})) as running:
        yield running


def received_chain_verifies(records: Sequence[dict[str, Any]]) -> bool:
    """What a SIEM can check on its own: every hash link, and every checkpoint's signature."""
    head = "0" * 64
    heads: dict[int, str] = {0: head}
    for record in records:
        if record["type"] == "audit_event":
            body = canonical_event(
                action=record["action"],
                actor=record["actor"],
                at=record["at"],
                data_json=canonical_json(record["data"]).decode(),
                incident_id=record["incident_id"],
                request_id=record["request_id"],
            )
            if record["prev_hash"] != head or chain_hash(head, body) != record["hash"]:
                return False
            head = heads[record["seq"]] = record["hash"]
            continue
        checkpoint = Checkpoint(
            record["seq"],
            record["head_hash"],
            datetime.fromisoformat(record["at"]),
            record["key_id"],
            record["signature"],
        )
        if heads.get(checkpoint.seq) != checkpoint.head_hash:
            return False
        if not CHECKER(checkpoint.message(), checkpoint.signature):
            return False
    return True


def test_webhook_outage_loses_nothing_and_delivers_once_in_order(
    uow_factory: SqlUnitOfWorkFactory, receiver: SinkReceiver
) -> None:
    sink = WebhookSink(receiver.webhook_url, receiver.webhook_secret)
    clock = Clock(T0)
    incidents.start_incident(
        uow=uow_factory, title="model serving down", severity=Severity.SEV1,
        opened_by="U0ONCALL1", channel_id="C0INC1", channel_name="inc-model", now=T0,
    )  # fmt: skip
    produce(uow_factory, 4, clock)
    sign_checkpoint(uow=uow_factory, signer=SIGNER, now=clock())
    assert export_audit(uow=uow_factory, sinks=[sink], clock=clock)[0].delivered == 6

    receiver.stop()
    produce(uow_factory, 5, clock)
    (refused,) = export_audit(uow=uow_factory, sinks=[sink], clock=clock)
    assert isinstance(refused.error, SinkUnavailable) and refused.attempts == 1
    assert export_backlog(uow=uow_factory, sinks=["webhook"])["webhook"].records == 5

    receiver.start()
    receiver.busy = True
    produce(uow_factory, 3, clock)
    clock.advance(seconds=5)
    (busy,) = export_audit(uow=uow_factory, sinks=[sink], clock=clock)
    assert isinstance(busy.error, SinkUnavailable) and "503" in busy.error.message
    assert busy.next_attempt_at == clock() + timedelta(seconds=10)

    receiver.busy = False
    requests = receiver.requests
    clock.advance(seconds=9)
    assert export_audit(uow=uow_factory, sinks=[sink], clock=clock)[0].delivered == 0
    assert receiver.requests == requests, "still backing off: nothing was sent"
    clock.advance(seconds=1)
    sign_checkpoint(uow=uow_factory, signer=SIGNER, now=clock() + timedelta(minutes=1))
    assert export_audit(uow=uow_factory, sinks=[sink], clock=clock)[0].delivered == 9

    assert receiver.accepted_ids() == expected_ids(13, {5: 1, 13: 2})
    assert receiver.rejected == [(503, "busy")], "no signature was ever refused"
    assert received_chain_verifies(receiver.accepted)
    backlog = export_backlog(uow=uow_factory, sinks=["webhook"])["webhook"]
    assert (backlog.records, backlog.oldest_at) == (0, None)


def test_splunk_hec_busy_then_back_gets_everything_once_with_metadata(
    uow_factory: SqlUnitOfWorkFactory, receiver: SinkReceiver
) -> None:
    sink = SplunkHecSink(
        receiver.hec_url, receiver.hec_token, index="security", source="gatehouse", host="bot-1"
    )
    clock = Clock(T0)
    produce(uow_factory, 3, clock)
    receiver.busy = True
    (busy,) = export_audit(uow=uow_factory, sinks=[sink], clock=clock)
    assert isinstance(busy.error, SinkUnavailable) and "Server is busy" in busy.error.message
    receiver.stop()
    sign_checkpoint(uow=uow_factory, signer=SIGNER, now=clock())
    produce(uow_factory, 2, clock)
    clock.advance(seconds=5)
    assert isinstance(
        export_audit(uow=uow_factory, sinks=[sink], clock=clock)[0].error, SinkUnavailable
    )
    receiver.start()
    receiver.busy = False
    clock.advance(seconds=10)
    assert export_audit(uow=uow_factory, sinks=[sink], clock=clock, batch=4)[0].delivered == 6

    assert receiver.accepted_ids() == expected_ids(5, {3: 1})
    assert received_chain_verifies(receiver.accepted)
    event, checkpoint = receiver.hec_events[0], receiver.hec_events[3]
    assert (event["sourcetype"], checkpoint["sourcetype"]) == (
        "gatehouse:audit_event",
        "gatehouse:audit_checkpoint",
    )
    assert {e["index"] for e in receiver.hec_events} == {"security"}
    assert {(e["host"], e["source"]) for e in receiver.hec_events} == {("bot-1", "gatehouse")}
    assert event["time"] == pytest.approx((T0 + timedelta(seconds=1)).timestamp())


def test_a_wrong_webhook_secret_is_a_loud_configuration_error_retried_slowly(
    uow_factory: SqlUnitOfWorkFactory, receiver: SinkReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0)
    produce(uow_factory, 2, clock)
    wrong = WebhookSink(receiver.webhook_url, "not-the-shared-secret")
    failures = metrics.AUDIT_EXPORT_FAILURES.labels("webhook", "misconfigured")
    before = failures._value.get()
    with caplog.at_level(logging.WARNING, logger="bot.bootstrap"):
        assert export_audit_to_sinks(uow_factory, [wrong], clock) == 0
        clock.advance(minutes=4)
        export_audit_to_sinks(uow_factory, [wrong], clock)  # backing off: nothing sent or said
    (line,) = caplog.records
    assert line.levelno == logging.ERROR
    message = line.getMessage()
    assert "webhook" in message and "misconfigured" in message and "401" in message
    assert "GATEHOUSE_AUDIT_WEBHOOK_SECRET" in message and "not-the-shared-secret" not in message
    assert receiver.rejected == [(401, "bad signature")] and receiver.accepted == []
    assert failures._value.get() == before + 1
    assert metrics.AUDIT_EXPORT_BACKLOG.labels("webhook")._value.get() == 2
    oldest = metrics.AUDIT_EXPORT_OLDEST_AGE.labels("webhook")._value.get()
    assert oldest == (clock() - (T0 + timedelta(seconds=1))).total_seconds()

    fixed = WebhookSink(receiver.webhook_url, receiver.webhook_secret)
    clock.advance(seconds=59)
    assert export_audit(uow=uow_factory, sinks=[fixed], clock=clock)[0].delivered == 0, "waits"
    clock.advance(seconds=1)
    assert export_audit_to_sinks(uow_factory, [fixed], clock) == 2
    assert receiver.accepted_ids() == expected_ids(2)
    assert metrics.AUDIT_EXPORT_BACKLOG.labels("webhook")._value.get() == 0


def test_a_wrong_hec_token_or_index_is_a_configuration_error(
    uow_factory: SqlUnitOfWorkFactory, receiver: SinkReceiver
) -> None:
    clock = Clock(T0)
    produce(uow_factory, 1, clock)
    wrong_token = SplunkHecSink(receiver.hec_url, "00000000-0000-0000-0000-000000000000")
    (refused,) = export_audit(uow=uow_factory, sinks=[wrong_token], clock=clock)
    assert isinstance(refused.error, SinkMisconfigured)
    assert "403" in refused.error.message and "GATEHOUSE_SPLUNK_HEC_TOKEN" in refused.error.message
    clock.advance(minutes=5)
    wrong_index = SplunkHecSink(receiver.hec_url, receiver.hec_token, index="main")
    (refused,) = export_audit(uow=uow_factory, sinks=[wrong_index], clock=clock)
    assert isinstance(refused.error, SinkMisconfigured)
    assert "GATEHOUSE_SPLUNK_HEC_INDEX" in refused.error.message
    assert receiver.accepted == []
    with uow_factory() as tx:
        assert tx.sink_cursors.backlog("splunk").records == 1


def test_each_sink_has_its_own_cursor(
    uow_factory: SqlUnitOfWorkFactory, receiver: SinkReceiver
) -> None:
    clock = Clock(T0)
    produce(uow_factory, 2, clock)
    webhook = WebhookSink(receiver.webhook_url, receiver.webhook_secret)
    splunk = SplunkHecSink(receiver.hec_url, "wrong-token")
    deliveries = export_audit(uow=uow_factory, sinks=[webhook, splunk], clock=clock)
    assert [d.delivered for d in deliveries] == [2, 0]
    backlog = export_backlog(uow=uow_factory, sinks=["webhook", "splunk"])
    assert (backlog["webhook"].records, backlog["splunk"].records) == (0, 2)
    assert backlog["splunk"].oldest_at == T0 + timedelta(seconds=1)


def test_nothing_is_kept_for_sinks_nobody_configured(
    uow_factory: SqlUnitOfWorkFactory, engine: Engine
) -> None:
    produce(uow_factory, 3, Clock(T0))
    assert export_audit(uow=uow_factory, sinks=[], clock=Clock(T0)) == []
    with engine.connect() as connection:
        sinks = select(func.count()).where(audit_sink_cursors.c.sink != notifier.NAME)
        assert connection.execute(sinks).scalar() == 0  # only the Slack notifier's own cursor
