"""The HTTP edge before Bolt: size cap, signature first, replays, retries, bounded rejection logs.

Slack's signing rule (v0, HMAC-SHA256 over `v0:<timestamp>:<raw body>`, a timestamp within five
minutes): https://api.slack.com/authentication/verifying-requests-from-slack
"""

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import Ack, App
from starlette.requests import Request
from starlette.testclient import TestClient

from bot.slack.edge import MAX_BODY_BYTES, RateLimitedLog, Refused, SlackEdge, sign
from bot.slack.http import create_http_app
from tests.unit.fakes import MemorySeenRequests
from tests.unit.slack.test_http import OfflineWebClient

SECRET = "edge-signing-secret"
EDGE_LOGGER = "bot.slack.edge"


def signed_headers(
    body: bytes, *, timestamp: str | None = None, content_type: str | None = None
) -> dict[str, str]:
    stamp = timestamp if timestamp is not None else str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SECRET, stamp, body),
        "Content-Type": content_type or "application/x-www-form-urlencoded",
    }


class Bot:
    """A Bolt app that counts what reaches it: every request it sees passed the edge."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.events: list[str] = []
        self.app = App(
            client=OfflineWebClient(token="xoxb-edge", base_url="http://127.0.0.1:9/"),
            signing_secret=SECRET,
            process_before_response=True,
        )

        @self.app.command("/incident")
        def on_incident(ack: Ack, command: dict[str, Any]) -> None:
            self.commands.append(command["text"])
            ack("opened")

        @self.app.event("app_home_opened")
        def on_home(event: dict[str, Any]) -> None:
            self.events.append(event["user"])


@pytest.fixture
def bot() -> Bot:
    return Bot()


@pytest.fixture
def client(bot: Bot) -> Iterator[TestClient]:
    edge = SlackEdge(SECRET, MemorySeenRequests())
    with TestClient(create_http_app(bot.app, dict, edge=edge)) as test_client:
        yield test_client


def incident_open(text: str = "Ranker latency") -> bytes:
    fields = {"command": "/incident", "text": text, "user_id": "U0ONCALL1", "team_id": "T0"}
    return urlencode({**fields, "channel_id": "C0GENERAL", "trigger_id": "1.2.x"}).encode()


def edge_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == EDGE_LOGGER]


UNSIGNED_JUNK = {
    "payload that is not JSON": (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    "payload=null": (b"payload=null", "application/x-www-form-urlencoded"),
    "invalid UTF-8": (b"command=/incident&text=\xff\xfe\xfd", "application/x-www-form-urlencoded"),
    "a form body sent as JSON": (incident_open(), "application/json"),
}


@pytest.mark.parametrize("case", list(UNSIGNED_JUNK), ids=list(UNSIGNED_JUNK))
def test_unsigned_junk_is_refused_with_401_and_one_short_line(
    case: str, bot: Bot, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body, content_type = UNSIGNED_JUNK[case]
    with caplog.at_level(logging.DEBUG):
        response = client.post(
            "/slack/events", content=body, headers={"Content-Type": content_type}
        )
    assert (response.status_code, response.text) == (401, "unauthorized")
    assert bot.commands == []
    (line,) = edge_lines(caplog)
    assert line == "refused a Slack request from testclient: no timestamp (401)"
    assert all(b"not-json" not in r.getMessage().encode() for r in caplog.records)


TIMESTAMPS = {
    "letters": "abc",
    "empty": "",
    "an exponent": "1e9",
    "5,000 digits": "9" * 5000,
    "Arabic-Indic digits": "١٧٠٠٠٠٠٠٠٠",
    "a sign": "+" + str(int(time.time())),
    "ten minutes old": str(int(time.time()) - 600),
}


@pytest.mark.parametrize("timestamp", list(TIMESTAMPS.values()), ids=list(TIMESTAMPS))
def test_a_malformed_or_stale_timestamp_is_refused_with_401_before_the_body_is_read(
    timestamp: str, bot: Bot, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = incident_open()
    # Signed correctly over whatever the header says: only the timestamp's shape is wrong.
    headers = signed_headers(body, timestamp=timestamp)
    with caplog.at_level(logging.DEBUG):
        response = client.post(
            "/slack/events", content=body, headers={k: v.encode() for k, v in headers.items()}
        )
    assert (response.status_code, response.text) == (401, "unauthorized")
    assert bot.commands == []
    (line,) = edge_lines(caplog)
    assert line.startswith("refused a Slack request from testclient: ") and len(line) < 80
    if timestamp:
        assert timestamp[:8] not in line


def test_a_bad_signature_is_refused_and_nothing_of_the_body_is_logged(
    bot: Bot, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = incident_open("secret-looking words")
    headers = signed_headers(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    with caplog.at_level(logging.DEBUG):
        response = client.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401 and bot.commands == []
    assert edge_lines(caplog) == ["refused a Slack request from testclient: bad signature (401)"]
    assert all("secret-looking" not in record.getMessage() for record in caplog.records)


SIGNED_MALFORMED = {
    "payload that is not JSON": (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    "payload=null": (b"payload=null", "application/x-www-form-urlencoded"),
    "a JSON list": (b"[1, 2]", "application/json"),
    "invalid UTF-8": (b"command=/incident&text=\xff\xfe\xfd", "application/x-www-form-urlencoded"),
    "a form body sent as JSON": (incident_open(), "application/json"),
}


@pytest.mark.parametrize("case", list(SIGNED_MALFORMED), ids=list(SIGNED_MALFORMED))
def test_a_signed_body_bolt_cannot_parse_gets_400_never_500(
    case: str, bot: Bot, client: TestClient
) -> None:
    body, content_type = SIGNED_MALFORMED[case]
    response = client.post(
        "/slack/events", content=body, headers=signed_headers(body, content_type=content_type)
    )
    assert (response.status_code, response.text) == (400, "bad request")
    assert bot.commands == []


def test_a_body_over_the_cap_is_refused_from_its_content_length(
    bot: Bot, client: TestClient
) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert (response.status_code, response.text) == (413, "request body too large")


def test_a_chunked_body_is_counted_and_refused_once_past_the_cap(
    bot: Bot, client: TestClient
) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(100):  # 6.4 MB on offer; the edge stops after 256 KiB
            sent.append(1)
            yield b"y" * 65536

    headers = {
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    response = client.post("/slack/events", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert bot.commands == []


def test_the_same_signed_request_three_times_reaches_bolt_once(
    bot: Bot, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = incident_open()
    headers = signed_headers(body)
    with caplog.at_level(logging.INFO):
        answers = [client.post("/slack/events", content=body, headers=headers) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 401, 401]
    assert bot.commands == ["Ranker latency"]
    assert (
        edge_lines(caplog)
        == ["refused a Slack request from testclient: replayed signature (401)"] * 2
    )


def home_opened(event_id: str) -> bytes:
    envelope = {
        "type": "event_callback",
        "team_id": "T0",
        "api_app_id": "A0",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": "U0ONCALL1", "tab": "home"},
    }
    return json.dumps(envelope).encode()


def test_slacks_retry_of_an_event_is_acknowledged_without_doing_it_again(
    bot: Bot, client: TestClient
) -> None:
    """Slack re-sends an event it thinks failed, re-signed, with X-Slack-Retry-Num; the event id
    stays the same: https://api.slack.com/apis/connections/events-api#retries"""
    body = home_opened("Ev0RETRIED1")
    first = client.post(
        "/slack/events", content=body, headers=signed_headers(body, content_type="application/json")
    )
    retry_headers = {
        **signed_headers(
            body, timestamp=str(int(time.time()) - 1), content_type="application/json"
        ),
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }
    retry = client.post("/slack/events", content=body, headers=retry_headers)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.content == b""
    assert bot.events == ["U0ONCALL1"]
    other = home_opened("Ev0ANOTHER2")
    client.post(
        "/slack/events",
        content=other,
        headers=signed_headers(other, content_type="application/json"),
    )
    assert bot.events == ["U0ONCALL1", "U0ONCALL1"]


def test_a_flood_of_junk_from_one_address_writes_a_few_lines(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        for _ in range(200):
            assert client.post("/slack/events", content=b"payload=null").status_code == 401
    assert len(edge_lines(caplog)) == 5
    rejected = client.get("/metrics").text
    assert 'gatehouse_slack_rejected_total{status="401"}' in rejected


def test_the_rejection_log_refills_per_address_and_is_bounded_overall() -> None:
    now = [0.0]
    limit = RateLimitedLog(
        burst=2, every=10, overall_burst=3, overall_every=1, clock=lambda: now[0]
    )
    assert [limit.allow("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert limit.allow("10.0.0.2") is True
    assert limit.allow("10.0.0.3") is False  # the overall budget of 3 is spent
    now[0] = 10.0
    assert limit.allow("10.0.0.1") is True
    assert limit.allow("10.0.0.1") is False


def test_a_body_sent_too_slowly_is_refused_and_its_connection_let_go(bot: Bot) -> None:
    """A client that stalls mid-body (a slow-loris) gets 408 after the edge's deadline instead of
    holding its connection and buffer; Bolt never sees it."""
    body = incident_open()
    headers = signed_headers(body)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/slack/events",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent_first_half = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not sent_first_half.is_set():
            sent_first_half.set()
            return {"type": "http.request", "body": body[:10], "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes
        raise AssertionError("unreachable")

    edge = SlackEdge(SECRET, MemorySeenRequests(), body_deadline_seconds=0.2)

    async def admit() -> Refused:
        with pytest.raises(Refused) as refused:
            await edge.admit(Request(scope, receive))
        return refused.value

    started = time.monotonic()
    refused = asyncio.run(admit())

    assert (refused.status, refused.answer) == (408, "request body too slow")
    assert time.monotonic() - started < 2
    assert bot.commands == []
