"""The loopback sink answers as a webhook receiver and as Splunk HEC do."""

import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.emulators.sinks import SinkReceiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[SinkReceiver]:
    with running_receiver(allowed_indexes=frozenset({"security"})) as running:
        yield running


def hec_post(receiver: SinkReceiver, body: bytes, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Splunk {token or receiver.hec_token}"}
    return httpx.post(receiver.hec_url + "/services/collector/event", content=body, headers=headers)


def test_hec_status_codes_and_bodies(receiver: SinkReceiver) -> None:
    url = receiver.hec_url + "/services/collector/event"
    assert httpx.post(url, content=b"{}").json() == {"text": "Token is required", "code": 2}
    bearer = httpx.post(url, content=b"{}", headers={"Authorization": "Bearer x"})
    assert (bearer.status_code, bearer.json()["code"]) == (401, 3)
    wrong = hec_post(receiver, b'{"event": "x"}', token="nope")
    assert (wrong.status_code, wrong.json()["code"]) == (403, 4)
    empty = hec_post(receiver, b"")
    assert (empty.status_code, empty.json()) == (400, {"text": "No data", "code": 5})
    health = httpx.get(receiver.hec_url + "/services/collector/health")
    assert health.json() == {"text": "HEC is healthy", "code": 17}
    receiver.busy = True
    busy = hec_post(receiver, b'{"event": "x"}')
    assert (busy.status_code, busy.json()["code"]) == (503, 9)
    unhealthy = httpx.get(receiver.hec_url + "/services/collector/health")
    assert (unhealthy.status_code, unhealthy.json()["code"]) == (503, 18)


def test_hec_keeps_the_events_before_an_invalid_one(receiver: SinkReceiver) -> None:
    batch = b'{"event": {"id": "a"}}\n{"event": {"id": "b"}}{"event": ""}\n{"event": {"id": "c"}}'
    answer = hec_post(receiver, batch)
    assert answer.status_code == 400
    assert answer.json() == {
        "text": "Event field cannot be blank",
        "code": 13,
        "invalid-event-number": 2,
    }
    assert receiver.accepted_ids() == ["a", "b"]
    wrong_index = hec_post(receiver, b'{"event": {"id": "d"}, "index": "main"}')
    assert wrong_index.json()["code"] == 7
    assert hec_post(receiver, b'{"event": {"id": "e"}, "index": "security"}').json()["code"] == 0
    assert hec_post(receiver, b'{"event": {"id": "f"}} {"nope"').json()["code"] == 6
    assert receiver.accepted_ids() == ["a", "b", "e", "f"]


def test_the_webhook_checks_signature_and_timestamp(receiver: SinkReceiver) -> None:
    body = json.dumps({"records": [{"id": "event-1"}]}).encode()

    def post(timestamp: int, secret: str) -> int:
        message = str(timestamp).encode() + b"." + body
        signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Gatehouse-Timestamp": str(timestamp),
            "X-Gatehouse-Signature": f"sha256={signature}",
        }
        return httpx.post(receiver.webhook_url, content=body, headers=headers).status_code

    now = int(time.time())
    assert post(now, "wrong") == 401
    assert post(now - 301, receiver.webhook_secret) == 401
    assert post(now, receiver.webhook_secret) == 200
    assert receiver.accepted_ids() == ["event-1"]
    assert receiver.rejected == [(401, "bad signature"), (401, "stale or missing timestamp")]


def test_stopped_means_refused_and_it_comes_back_on_the_same_port(receiver: SinkReceiver) -> None:
    url = receiver.hec_url + "/services/collector/health"
    port = receiver.port
    receiver.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
    receiver.start()
    assert receiver.port == port
    assert httpx.get(url).status_code == 200
