"""Bound identities: signed form metadata, the installation's workspace and app, Slack id
shapes, payloads Bolt cannot read, and the backstop behind every listener."""

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import ValidationError
from slack_bolt import Ack
from starlette.testclient import TestClient

from bot.config import Settings
from bot.slack.app import create_app, unreadable
from bot.slack.edge import SlackEdge
from bot.slack.http import create_http_app
from bot.slack.installation import Installation, foreign, learn_installation
from bot.slack.metadata import MetadataSeal, TamperedMetadata
from bot.slack.parsing import HandOff, parse_incident_command
from bot.slack.payloads import (
    SORRY,
    Click,
    MalformedPayload,
    is_channel_id,
    is_user_id,
    read,
)
from bot.slack.views import slack_deps
from tests.unit.example_policy import example_policy
from tests.unit.fakes import FakeBroker, FakeChat, MemorySeenRequests, MemoryStore
from tests.unit.slack.test_http import OfflineWebClient

SECRET = "unit-signing-secret"


# -- signed private metadata -------------------------------------------------------------


def test_metadata_signed_by_one_replica_is_accepted_by_another() -> None:
    one, other = MetadataSeal(SECRET), MetadataSeal(SECRET)
    sealed = one.sign("U0ONCALL2", "R-ABCDEFGH|C0INC.1")
    assert other.verify("U0ONCALL2", sealed) == "R-ABCDEFGH|C0INC.1"


@pytest.mark.parametrize(
    "forge",
    [
        lambda seal: "C0THEIRS",  # unsigned
        lambda seal: seal.sign("U0LEAD1", "C0THEIRS"),  # signed for another user
        lambda seal: seal.sign("U0ONCALL2", "C0MINE").replace("C0MINE", "C0THEIRS"),
        lambda seal: MetadataSeal("another secret").sign("U0ONCALL2", "C0THEIRS"),
        lambda seal: seal.sign("U0ONCALL2", "C0THEIRS")[:-1] + "A",
        lambda seal: "",
    ],
    ids=["unsigned", "other user", "altered", "other key", "mac altered", "empty"],
)
def test_forged_or_altered_metadata_is_refused(forge: Any) -> None:
    seal = MetadataSeal(SECRET)
    with pytest.raises(TamperedMetadata):
        seal.verify("U0ONCALL2", forge(seal))


def test_a_sealed_view_keeps_everything_but_signs_its_metadata() -> None:
    seal = MetadataSeal(SECRET)
    view = {"type": "modal", "private_metadata": "C0INC", "blocks": []}
    sealed = seal.seal_view("U0ONCALL2", view)
    assert {k: v for k, v in sealed.items() if k != "private_metadata"} == {
        "type": "modal",
        "blocks": [],
    }
    assert seal.verify("U0ONCALL2", sealed["private_metadata"]) == "C0INC"
    assert view["private_metadata"] == "C0INC"  # the original is left alone


def test_metadata_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="non-empty secret"):
        MetadataSeal("")


# -- the installation --------------------------------------------------------------------

HERE = Installation(team_id="T0HOME", app_id="A0GATE")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"team": {"id": "T0HOME"}, "api_app_id": "A0GATE"}, None),
        ({"team_id": "T0HOME", "api_app_id": "A0GATE"}, None),
        ({"team": {"id": "T0ELSE"}, "api_app_id": "A0GATE"}, "another workspace"),
        ({"team_id": "T0ELSE"}, "another workspace"),
        ({"team": {"id": "T0HOME"}, "api_app_id": "A0OTHER"}, "another app"),
        ({"team": "T0ELSE"}, "another workspace"),
        ({"team": {"id": 5}}, "another workspace"),
    ],
)
def test_payloads_for_another_workspace_or_app_are_foreign(
    body: dict[str, Any], why: str | None
) -> None:
    assert foreign(body, HERE) == why


def test_without_an_app_id_only_the_workspace_is_bound() -> None:
    team_only = Installation(team_id="T0HOME", app_id=None)
    assert foreign({"team_id": "T0HOME", "api_app_id": "A0ANY"}, team_only) is None
    assert foreign({"team_id": "T0ELSE", "api_app_id": "A0ANY"}, team_only) == "another workspace"


def test_the_installation_comes_from_auth_test_unless_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = OfflineWebClient(token="xoxb-test", base_url="http://127.0.0.1:9/")
    with caplog.at_level(logging.WARNING):
        learned = learn_installation(client)  # this auth.test names no app_id
    assert learned == Installation(team_id="T0", app_id=None)
    assert "set SLACK_APP_ID" in caplog.text
    assert learn_installation(client, app_id="A0GATE") == Installation("T0", "A0GATE")
    with pytest.raises(ValueError, match="not a Slack team id"):
        learn_installation(client, team_id="t0-lower", app_id="A0GATE")
    with pytest.raises(ValueError, match="not a Slack app id"):
        learn_installation(client, app_id="B0BOT")


@pytest.mark.parametrize(("field", "letter"), [("slack_team_id", "T"), ("slack_app_id", "A")])
def test_configured_ids_must_have_slacks_shape(field: str, letter: str) -> None:
    values: dict[str, Any] = {field: f"{letter}0X><!channel"}
    with pytest.raises(ValidationError, match="must be a Slack id"):
        Settings.model_validate(values)
    settings = Settings.model_validate({field: f"{letter}0ABC123"})
    assert getattr(settings, field) == f"{letter}0ABC123"


# -- id shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["U0X><!channel|x", "u0lower", "U", "U" + "A" * 32, "C0ABC", "", 7, None]
)
def test_what_is_not_a_user_id(value: object) -> None:
    assert not is_user_id(value)


@pytest.mark.parametrize("value", ["U0LEAD1", "W012ABCDEF", "USLACKBOT", "U" + "A" * 31])
def test_what_is_a_user_id(value: str) -> None:
    assert is_user_id(value)


def test_channel_ids_are_public_private_or_direct() -> None:
    assert all(is_channel_id(c) for c in ("C0INC", "G0PRIV", "D0DM"))
    assert not any(is_channel_id(c) for c in ("U0LEAD1", "C0<!here>", "c0inc", "#general"))


def test_a_malformed_payload_names_the_field_never_the_value() -> None:
    with pytest.raises(MalformedPayload) as raised:
        read(Click, {"user": {"id": "U0X><!channel|x"}, "trigger_id": "1", "actions": []})
    assert "user.id" in raised.value.problem
    assert "channel" not in raised.value.problem


@pytest.mark.parametrize(
    "text", ["commander <@U0LEAD1|linus>", "commander <@U0LEAD1>", "commander U0LEAD1"]
)
def test_the_commander_is_read_from_a_mention_or_a_bare_id(text: str) -> None:
    assert parse_incident_command(text) == HandOff("U0LEAD1")


# -- payloads Bolt cannot read, and the backstop -------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"type": "block_actions", "actions": []}, "action cannot be read"),
        ({"type": "block_actions", "actions": [5]}, "actions are not a list of objects"),
        ({"type": "block_actions", "actions": {"a": 1}}, "actions are not a list of objects"),
        ({"type": "event_callback", "event": "type"}, "event is not an object"),
        ({"type": "event_callback", "event": ["type"]}, "event is not an object"),
        ({"type": "event_callback", "event": "x"}, "event is not an object"),
        ({"type": "view_submission", "view": "x"}, "view is not an object"),
        ({"type": "block_actions", "team": "T0", "actions": [{}]}, "team is not an object"),
        ({"type": "block_actions", "user": 5, "actions": [{}]}, "user is not an object"),
        ([], "not an object"),
    ],
)
def test_payloads_bolt_cannot_read_are_named(body: object, problem: str) -> None:
    assert problem in (unreadable(body) or "")


def test_a_well_formed_payload_is_readable() -> None:
    assert unreadable({"type": "block_actions", "actions": [{"action_id": "a"}]}) is None
    assert unreadable({"command": "/incident", "text": ""}) is None


def _signed(body: str, *, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _client() -> TestClient:
    deps = slack_deps(
        uow=MemoryStore(),
        policy=example_policy(),
        broker=FakeBroker(),
        chat=FakeChat(),
        clock=lambda: datetime.now(UTC),
    )
    bolt = create_app(
        deps=deps,
        client=OfflineWebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"),
        signing_secret=SECRET,
        process_before_response=True,
        workers=2,
    )

    @bolt.command("/boom")
    def boom(ack: Ack) -> None:
        raise RuntimeError("a bug in a listener")

    return TestClient(create_http_app(bolt, dict, edge=SlackEdge(SECRET, MemorySeenRequests())))


def test_a_failing_listener_is_one_log_line_and_an_apology_never_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = urlencode({"command": "/boom", "text": "", "user_id": "U0ONCALL2", "team_id": "T0"})
    with caplog.at_level(logging.INFO, logger="gatehouse.slack"):
        response = _client().post("/slack/events", content=body, headers=_signed(body))
    assert response.status_code == 200
    assert response.text == SORRY
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and failures[0].exc_info is None
    assert "RuntimeError" in failures[0].getMessage()
    assert "a bug in a listener" not in caplog.text  # the message may carry user input


def test_an_empty_actions_list_is_401_unsigned_and_200_signed() -> None:
    payload = {"type": "block_actions", "team": {"id": "T0"}, "actions": []}
    body = urlencode({"payload": json.dumps(payload)})
    client = _client()
    assert (
        client.post("/slack/events", content=body, headers=_signed(body, secret="x")).status_code
        == 401
    )
    response = client.post("/slack/events", content=body, headers=_signed(body))
    assert response.status_code == 200 and response.text == ""


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "view_submission", "view": "x", "user": {"id": "U0ONCALL2"}},
        {"type": "view_submission", "view": {"callback_id": 5}, "user": "U0ONCALL2"},
        {"type": "view_submission", "view": {"callback_id": "gatehouse.request_access"}},
        {"type": "block_actions", "actions": [{"action_id": 5, "value": 5}]},
        {"type": "block_actions", "actions": [{"action_id": "gatehouse.approve"}], "user": 5},
        {"type": "block_actions", "actions": None},
        {"type": 7},
        {"type": "event_callback", "event": {"type": "app_home_opened", "user": ["U0X"]}},
        None,
        "payload",
    ],
)
def test_signed_payloads_of_any_shape_never_get_a_500(payload: object) -> None:
    if isinstance(payload, dict) and payload.get("type") == "event_callback":
        body = json.dumps({**payload, "team_id": "T0"})
        headers = {**_signed(body), "Content-Type": "application/json"}
    else:
        if isinstance(payload, dict):
            payload = {**payload, "team": {"id": "T0"}}
        body = urlencode({"payload": json.dumps(payload)})
        headers = _signed(body)
    response = _client().post("/slack/events", content=body, headers=headers)
    assert response.status_code in (200, 400, 404), response.text
    assert "Traceback" not in response.text


def test_a_signed_request_no_listener_handles_is_a_404_and_one_line_quoting_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bolt's own warning for an unhandled request quotes its ids and suggests code; here it is
    one line that repeats nothing the sender chose."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T0"},
        "user": {"id": "U0ONCALL2"},
        "trigger_id": "1.2.x",
        "actions": [{"action_id": "forged-action-IDENTIFIABLE", "value": "R-AAAAAAAA"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    client = _client()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = client.post("/slack/events", content=body, headers=_signed(body))
    assert response.status_code == 404
    assert "IDENTIFIABLE" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == ["a Slack request no listener handles was answered 404"]
