"""HTTP mode: signed requests only, an ack well inside 3 s, health, readiness and metrics."""

import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse
from starlette.testclient import TestClient

from bot.app.deps import Deps
from bot.domain.incident import Severity
from bot.services import incidents
from bot.slack.app import create_app
from bot.slack.edge import SlackEdge
from bot.slack.http import create_http_app
from bot.slack.views import slack_deps
from tests.unit.example_policy import example_policy
from tests.unit.fakes import FakeBroker, FakeChat, MemorySeenRequests, MemoryStore

SECRET = "test-signing-secret"


def signed(body: str, *, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time()) - age)
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def command(text: str, command: str = "/request-access", channel: str = "C0NOTINC") -> str:
    return urlencode(
        {
            "command": command,
            "text": text,
            "user_id": "U0ONCALL2",
            "channel_id": channel,
            "team_id": "T0",
            "response_url": "http://127.0.0.1:9/response",
            "trigger_id": "1.2.x",
        }
    )


class OfflineWebClient(WebClient):
    """Answers auth.test itself; these tests post nothing to Slack before the ack."""

    def auth_test(self, **kwargs: Any) -> SlackResponse:
        data = {
            "ok": True,
            "url": "https://example.slack.com/",
            "team": "Example",
            "user": "gatehouse",
            "team_id": "T0",
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
        }
        return SlackResponse(
            client=self,
            http_verb="POST",
            api_url="auth.test",
            req_args={},
            data=data,
            headers={},
            status_code=200,
        )


def offline_deps() -> Deps:
    return slack_deps(
        uow=MemoryStore(),
        policy=example_policy(),
        broker=FakeBroker(),
        chat=FakeChat(),
        clock=lambda: datetime.now(UTC),
    )


def make_client(
    problems: Callable[[], dict[str, str]] = dict,
    details: Callable[[], dict[str, str]] = dict,
    deps: Deps | None = None,
) -> TestClient:
    deps = deps or offline_deps()
    bolt = create_app(
        deps=deps,
        client=OfflineWebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"),
        signing_secret=SECRET,
        process_before_response=True,
        workers=2,
    )
    edge = SlackEdge(SECRET, MemorySeenRequests())
    return TestClient(create_http_app(bolt, problems, edge=edge, details=details))


def test_unsigned_badly_signed_and_stale_requests_are_refused() -> None:
    client = make_client()
    body = command("inference-logs-ro 1h x")
    assert client.post("/slack/events", content=body).status_code == 401
    assert (
        client.post("/slack/events", content=body, headers=signed(body, secret="nope")).status_code
        == 401
    )
    assert (
        client.post("/slack/events", content=body, headers=signed(body, age=301)).status_code == 401
    )


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("inference-logs 1h look", "Did you mean `inference-logs-ro`?"),
        ("inference-logs-ro 9h look", "at most 4h"),
        ("inference-logs-ro 1h", "Say why you need access"),
    ],
)
def test_bad_input_is_answered_in_the_ack_with_usage(text: str, answer: str) -> None:
    client = make_client()
    body = command(text)
    started = time.perf_counter()
    response = client.post("/slack/events", content=body, headers=signed(body))
    assert time.perf_counter() - started < 3
    assert response.status_code == 200
    assert answer in response.text and "Usage:" in response.text
    assert "You typed: `/request-access" in response.text


def test_a_request_is_filed_before_its_empty_ack() -> None:
    deps = offline_deps()
    incident = incidents.start_incident(
        uow=deps.uow,
        title="Drift",
        severity=Severity.SEV3,
        opened_by="U0ONCALL1",
        channel_id="C0DRIFT",
        channel_name="inc-drift",
        now=datetime.now(UTC),
    )
    body = command("inference-logs-ro soon-ish please", channel=incident.channel_id)
    response = make_client(deps=deps).post("/slack/events", content=body, headers=signed(body))
    assert response.status_code == 200 and response.text == ""
    with deps.uow() as tx:
        (filed,) = tx.requests.list_for_incident(incident.id)
    assert filed.requester_id == "U0ONCALL2" and filed.reason == "soon-ish please"


def test_a_request_that_cannot_be_filed_is_refused_in_the_ack() -> None:
    body = command("inference-logs-ro soon-ish please")
    response = make_client().post("/slack/events", content=body, headers=signed(body))
    assert response.status_code == 200
    assert "This is not an incident channel" in response.text


def test_unknown_incident_subcommand_gets_usage() -> None:
    client = make_client()
    body = command("reopen", command="/incident")
    response = client.post("/slack/events", content=body, headers=signed(body))
    assert "`reopen` is not an /incident command" in response.text


def test_health_readiness_and_metrics() -> None:
    assert make_client().get("/healthz").json() == {"alive": True}
    assert make_client().get("/readyz").json() == {"ready": True, "problems": {}}
    not_ready = make_client(lambda: {"database": "OperationalError"}).get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["problems"] == {"database": "OperationalError"}


def test_healthz_reports_details_and_stays_alive() -> None:
    """A sealed Vault is reported on /healthz, never a reason to restart the process."""
    healthz = make_client(details=lambda: {"vault": "sealed"}).get("/healthz")
    assert healthz.status_code == 200
    assert healthz.json() == {"alive": True, "vault": "sealed"}
    metrics = make_client().get("/metrics")
    assert metrics.status_code == 200 and "python_info" in metrics.text


def test_acks_are_timed_on_metrics() -> None:
    client = make_client()
    body = command("reopen", command="/incident")
    client.post("/slack/events", content=body, headers=signed(body))
    assert "gatehouse_ack_seconds_count" in client.get("/metrics").text
