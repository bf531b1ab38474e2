"""The sink adapters on the wire: the webhook signature a receiver checks, HEC's payload, and
which answers are retried soon, retried slowly (configuration), or accepted."""

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.domain.audit import AuditEntry, next_in_chain
from bot.domain.checkpoints import Checkpoint
from bot.domain.errors import SinkMisconfigured, SinkUnavailable
from bot.domain.export import ExportRecord, checkpoint_record, event_record
from integrations.sinks import SplunkHecSink, WebhookSink

T0 = datetime(2026, 11, 23, 9, 0, 0, 250_000, tzinfo=UTC)
SECRET = "webhook-shared-secret"
TOKEN = "0d7c1c4e-7d1f-4a35-9b1e-4b8f2f0c9e11"
SENT_AT = 1_795_424_400.9


def records() -> list[ExportRecord]:
    first = next_in_chain(
        AuditEntry("incident.opened", T0, actor="U1", incident_id="INC-1", data={"t": "ü"}), None
    )
    second = next_in_chain(AuditEntry("request.filed", T0 + timedelta(seconds=1)), first)
    checkpoint = Checkpoint(2, second.hash, T0 + timedelta(seconds=2), "key1", "ab" * 64)
    return [event_record(first), event_record(second), checkpoint_record(1, checkpoint)]


Reply = Callable[[httpx.Request], httpx.Response]


def capture(reply: Reply = lambda _: httpx.Response(200)) -> tuple[list[httpx.Request], Reply]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(request)

    return seen, handler


def webhook(
    reply: Reply = lambda _: httpx.Response(200),
) -> tuple[WebhookSink, list[httpx.Request]]:
    seen, handler = capture(reply)
    sink = WebhookSink(
        "https://siem.example/hook/", SECRET, clock=lambda: SENT_AT,
        transport=httpx.MockTransport(handler),
    )  # fmt: skip
    return sink, seen


def hec(reply: Reply, *, index: str | None = None) -> tuple[SplunkHecSink, list[httpx.Request]]:
    seen, handler = capture(reply)
    sink = SplunkHecSink(
        "https://splunk.example:8088/", TOKEN, index=index, source="gatehouse-prod",
        host="replica-1", transport=httpx.MockTransport(handler),
    )  # fmt: skip
    return sink, seen


def receiver_accepts(secret: str, request: httpx.Request, *, now: float) -> bool:
    """What a receiver does, from the documented scheme only."""
    timestamp = request.headers["X-Gatehouse-Timestamp"]
    if abs(now - int(timestamp)) > 300:
        return False
    message = timestamp.encode() + b"." + request.content
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers["X-Gatehouse-Signature"])


def test_a_receiver_verifies_the_signature_over_the_timestamp_and_the_raw_body() -> None:
    sink, seen = webhook()
    sink.send(records())
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://siem.example/hook/"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Gatehouse-Timestamp"] == "1795424400"
    assert request.headers["X-Gatehouse-Signature"].startswith("sha256=")
    assert json.loads(request.content) == {"records": [r.body for r in records()]}
    assert receiver_accepts(SECRET, request, now=SENT_AT + 299)

    assert not receiver_accepts("another-secret", request, now=SENT_AT)
    assert not receiver_accepts(SECRET, request, now=SENT_AT + 301), "a replay, too late"
    edited = altered(request, content=request.content.replace(b'"U1"', b'"U2"'))
    assert edited.content != request.content
    assert not receiver_accepts(SECRET, edited, now=SENT_AT)
    later = altered(request, timestamp=str(int(SENT_AT) + 60))
    assert not receiver_accepts(SECRET, later, now=SENT_AT), "the timestamp is signed too"


def altered(
    request: httpx.Request, *, content: bytes | None = None, timestamp: str | None = None
) -> httpx.Request:
    headers = request.headers.copy()
    if timestamp is not None:
        headers["X-Gatehouse-Timestamp"] = timestamp
    body = request.content if content is None else content
    return httpx.Request("POST", request.url, content=body, headers=headers)


def test_exported_records_carry_ids_types_and_everything_hashed() -> None:
    event, _, checkpoint = records()
    assert event.body == {
        "type": "audit_event",
        "id": "event-1",
        "seq": 1,
        "at": "2026-11-23T09:00:00.250000+00:00",
        "action": "incident.opened",
        "actor": "U1",
        "incident_id": "INC-1",
        "request_id": None,
        "data": {"t": "ü"},
        "prev_hash": "0" * 64,
        "hash": event.body["hash"],
    }
    assert checkpoint.body == {
        "type": "audit_checkpoint",
        "id": "checkpoint-1",
        "seq": 2,
        "head_hash": records()[1].body["hash"],
        "at": "2026-11-23T09:00:02.250000+00:00",
        "key_id": "key1",
        "signature": "ab" * 64,
    }


@pytest.mark.parametrize("index", [None, "security"])
def test_hec_payload_is_one_event_object_per_record(index: str | None) -> None:
    sink, seen = hec(
        lambda _: httpx.Response(200, json={"text": "Success", "code": 0}), index=index
    )
    sink.send(records())
    request = seen[0]
    assert str(request.url) == "https://splunk.example:8088/services/collector/event"
    assert request.headers["Authorization"] == f"Splunk {TOKEN}"
    lines = request.content.split(b"\n")
    assert len(lines) == 3
    sent = [json.loads(line) for line in lines]
    expected_index = {"index": index} if index else {}
    for event, record, sourcetype in zip(
        sent, records(), ["audit_event", "audit_event", "audit_checkpoint"], strict=True
    ):
        assert event == {
            "time": round(record.at.timestamp(), 6),
            "host": "replica-1",
            "source": "gatehouse-prod",
            "sourcetype": f"gatehouse:{sourcetype}",
            "event": record.body,
            **expected_index,
        }
    assert sent[0]["time"] == 1795424400.25


def hec_reply(status: int, body: object) -> Reply:
    if isinstance(body, str):
        return lambda _: httpx.Response(status, text=body)
    return lambda _: httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "body", "error", "mentions"),
    [
        (503, {"text": "Server is busy", "code": 9}, SinkUnavailable, "busy"),
        (503, {"text": "HEC is unhealthy, queues are full", "code": 18}, SinkUnavailable, "18"),
        (500, {"text": "Internal server error", "code": 8}, SinkUnavailable, "code 8"),
        (429, "Too Many Requests", SinkUnavailable, "429"),
        (502, "<html>Bad gateway</html>", SinkUnavailable, "502"),
        (401, {"text": "Token is required", "code": 2}, SinkMisconfigured, "GATEHOUSE_SPLUNK"),
        (403, {"text": "Invalid token", "code": 4}, SinkMisconfigured, "SPLUNK_HEC_TOKEN"),
        (403, {"text": "Token disabled", "code": 1}, SinkMisconfigured, "disabled"),
        (400, {"text": "Incorrect index", "code": 7, "invalid-event-number": 0},
         SinkMisconfigured, "SPLUNK_HEC_INDEX"),
        (400, {"text": "Data channel is missing", "code": 10}, SinkMisconfigured, "acknowledge"),
        (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 2},
         SinkMisconfigured, "event 2 of the batch"),
        (200, "<html>Splunk Web login</html>", SinkMisconfigured, "code None"),
        (200, {"text": "HEC is healthy", "code": 17}, SinkMisconfigured, "code 17"),
        (404, "Not found", SinkMisconfigured, "GATEHOUSE_SPLUNK_HEC_URL"),
    ],
)  # fmt: skip
def test_hec_answers_are_retried_or_reported_as_configuration_errors(
    status: int, body: object, error: type[Exception], mentions: str
) -> None:
    sink, _ = hec(hec_reply(status, body))
    with pytest.raises(error) as raised:
        sink.send(records())
    assert mentions in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_hec_accepts_only_a_2xx_with_code_zero() -> None:
    sink, seen = hec(hec_reply(200, {"text": "Success", "code": 0}))
    sink.send(records())
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, SinkUnavailable),
        (503, SinkUnavailable),
        (429, SinkUnavailable),
        (408, SinkUnavailable),
        (400, SinkMisconfigured),
        (401, SinkMisconfigured),
        (403, SinkMisconfigured),
        (404, SinkMisconfigured),
        (301, SinkMisconfigured),
    ],
)
def test_webhook_answers_are_retried_or_reported_as_configuration_errors(
    status: int, error: type[Exception]
) -> None:
    sink, _ = webhook(lambda _: httpx.Response(status, text="nope"))
    with pytest.raises(error) as raised:
        sink.send(records())
    assert SECRET not in str(raised.value)
    if error is SinkMisconfigured:
        assert "GATEHOUSE_AUDIT_WEBHOOK_SECRET" in str(raised.value)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_accepts_a_webhook_batch(status: int) -> None:
    sink, seen = webhook(lambda _: httpx.Response(status))
    sink.send(records())
    assert len(seen) == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")],
)
def test_unreachable_sinks_are_retried_and_the_url_is_not_in_the_message(
    failure: httpx.HTTPError,
) -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise failure

    for sink in (webhook(fail)[0], hec(fail)[0]):
        with pytest.raises(SinkUnavailable) as raised:
            sink.send(records())
        assert type(failure).__name__ in str(raised.value)
        assert "example" not in str(raised.value)


def test_hec_check_reads_health_then_proves_the_token_with_an_empty_post() -> None:
    def healthy(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"text": "HEC is healthy", "code": 17})
        if request.headers["Authorization"] != f"Splunk {TOKEN}":
            return httpx.Response(403, json={"text": "Invalid token", "code": 4})
        return httpx.Response(400, json={"text": "No data", "code": 5})

    sink, seen = hec(healthy)
    assert "token is accepted" in sink.check()
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/services/collector/health"),
        ("POST", "/services/collector/event"),
    ]
    assert seen[1].content == b""

    busy, _ = hec(hec_reply(503, {"text": "HEC is unhealthy, queues are full", "code": 18}))
    with pytest.raises(SinkUnavailable):
        busy.check()
    wrong = SplunkHecSink(
        "https://splunk.example:8088", "wrong", transport=httpx.MockTransport(healthy)
    )
    with pytest.raises(SinkMisconfigured, match="SPLUNK_HEC_TOKEN"):
        wrong.check()


def test_the_hec_url_may_be_given_with_the_event_path() -> None:
    seen, handler = capture(hec_reply(200, {"text": "Success", "code": 0}))
    sink = SplunkHecSink(
        "https://splunk.example:8088/services/collector/event", TOKEN,
        transport=httpx.MockTransport(handler),
    )  # fmt: skip
    sink.send(records())
    assert seen[0].url.path == "/services/collector/event"
