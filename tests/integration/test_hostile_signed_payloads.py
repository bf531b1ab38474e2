"""Signed but hostile payloads over HTTP: another workspace or app, forged form metadata, ids
carrying markup, a bot as commander, and malformed payloads. None gets a 500, none does work.

The bot runs in HTTP mode (real Bolt app, real Slack adapters against the Slack emulator, a
memory store and a fake broker) and is driven by the emulator's client, which signs every
request as Slack does (https://api.slack.com/authentication/verifying-requests-from-slack).
After each request the listener pool is drained, so "nothing happened" is checked once all
the work the request caused has run.
"""

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState
from bot.domain.incident import Incident, Severity
from bot.services import access, incidents
from bot.slack import ids
from bot.slack.app import create_app
from bot.slack.edge import SlackEdge
from bot.slack.http import create_http_app
from bot.slack.installation import Installation, learn_installation
from bot.slack.metadata import MetadataSeal
from bot.slack.views import slack_deps
from integrations.slack_web import SlackChat, SlackDirectory, make_web_client
from tests.emulators.slack.client import InboundResult, SlackClient
from tests.emulators.slack.emulator import SlackEmulator
from tests.unit.example_policy import EVERYONE, example_policy
from tests.unit.fakes import FakeBroker, MemorySeenRequests, MemoryStore

OPENER, REQUESTER, LEAD = "U0ONCALL1", "U0ONCALL2", "U0LEAD1"
SECRET = "edge-test-signing-secret"


@dataclass
class Edge:
    slack: SlackEmulator
    client: SlackClient
    deps: Deps
    executor: ThreadPoolExecutor

    def settle(self) -> None:
        """Wait for every listener the requests started: after this, all work is done."""
        self.executor.shutdown(wait=True)

    @property
    def broker(self) -> FakeBroker:
        assert isinstance(self.deps.broker, FakeBroker)
        return self.deps.broker

    def payload(self, payload: dict[str, Any]) -> InboundResult:
        return self.client.send_payload(payload)

    def told(self, user: str) -> list[str]:
        """Everything `user` was shown privately: ephemerals, DMs, response_url replies."""
        ws = self.slack.workspace
        with ws.lock:
            texts = [e.text for e in ws.ephemerals if e.user == user]
            for channel in ws.channels.values():
                if channel.is_im and channel.im_user == user:
                    texts += [m.text for m in channel.history]
            for url in ws.response_urls.values():
                if url.user_id == user:
                    texts += [str(post.body.get("text", "")) for post in url.posts]
        return texts

    def slack_calls(self, method: str) -> list[dict[str, Any]]:
        return [call.args for call in self.slack.calls if call.method == method]

    def incident(self, opener: str = OPENER, title: str = "Drift") -> Incident:
        return workflows.open_incident(
            self.deps, title=title, severity=Severity.SEV3, opener=opener
        )

    def filed(self, channel: str) -> str:
        return workflows.file_request(
            self.deps,
            channel_id=channel,
            user=REQUESTER,
            resource="inference-logs-ro",
            duration="30m",
            reason="drift",
        )

    def click(self, user: str, action_id: str, channel: str, **extra: Any) -> dict[str, Any]:
        """A block_actions payload as Slack sends it for a click on a message in `channel`."""
        ws = self.slack.workspace
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.slack.team_id},
            "api_app_id": self.slack.app_id,
            "token": self.slack.verification_token,
            "container": {"type": "message", "channel_id": channel, "message_ts": "1.2"},
            "trigger_id": ws.issue_trigger(user),
            "team": {"id": self.slack.team_id, "domain": ws.team_domain},
            "channel": {"id": channel, "name": "incident"},
            "actions": [
                {"action_id": action_id, "block_id": "b", "type": "button", "action_ts": "1.3"}
            ],
        }
        payload.update(extra)
        return payload


def _free_listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener


@pytest.fixture
def edge() -> Iterator[Edge]:
    with SlackEmulator(signing_secret=SECRET) as slack:
        for user in EVERYONE:
            slack.add_user(user, user.lower())
        web = make_web_client(slack.bot_token, base_url=slack.api_url)
        deps = slack_deps(
            uow=MemoryStore(),
            policy=example_policy(),
            broker=FakeBroker(),
            chat=SlackChat(web),
            clock=lambda: datetime.now(UTC),
            directory=SlackDirectory(web),
            seal=MetadataSeal(SECRET),
        )
        executor = ThreadPoolExecutor(max_workers=4)
        bolt = create_app(
            deps=deps,
            client=web,
            signing_secret=SECRET,
            process_before_response=True,
            executor=executor,
        )
        listener = _free_listener()
        server = uvicorn.Server(
            uvicorn.Config(
                create_http_app(bolt, dict, edge=SlackEdge(SECRET, MemorySeenRequests())),
                log_level="warning",
                lifespan="off",
            )
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        port = listener.getsockname()[1]
        try:
            yield Edge(
                slack, SlackClient(slack, f"http://127.0.0.1:{port}/slack/events"), deps, executor
            )
        finally:
            executor.shutdown(wait=True)
            server.should_exit = True
            thread.join(timeout=10)
            listener.close()


def test_the_installation_is_learned_from_auth_test(edge: Edge) -> None:
    """auth.test names the workspace and the app (`team_id`, `app_id`:
    https://docs.slack.dev/reference/methods/auth.test); configured ids win."""
    web = make_web_client(edge.slack.bot_token, base_url=edge.slack.api_url)
    assert learn_installation(web) == Installation(edge.slack.team_id, edge.slack.app_id)
    assert learn_installation(web, team_id="T0SET", app_id="A0SET") == Installation(
        "T0SET", "A0SET"
    )


@pytest.mark.parametrize(
    ("team", "app", "issued"),
    [
        (None, None, True),  # this workspace and app: the control
        ("T0OTHERTEAM", None, False),
        (None, "A0OTHERAPP", False),
        ("T0OTHERTEAM", "A0OTHERAPP", False),
    ],
)
def test_a_signed_click_for_another_workspace_or_app_issues_nothing(
    edge: Edge, team: str | None, app: str | None, issued: bool
) -> None:
    incident = edge.incident()
    request_id = edge.filed(incident.channel_id)
    click = edge.click(LEAD, ids.APPROVE, incident.channel_id)
    click["actions"][0]["value"] = request_id
    if team is not None:
        click["team"] = {"id": team, "domain": "elsewhere"}
        click["user"]["team_id"] = team
    if app is not None:
        click["api_app_id"] = app

    before = edge.told(LEAD)  # the request as a task of their own, since it was filed
    result = edge.payload(click)
    edge.settle()

    assert result.status == 200
    state = access.get_request(uow=edge.deps.uow, request_id=request_id).state
    if issued:
        assert edge.broker.issued and state is RequestState.ACTIVE
    else:
        assert edge.broker.issued == [] and state is RequestState.PENDING
        assert edge.told(LEAD) == before  # refused without a word to anyone


def test_a_slash_command_for_another_workspace_opens_nothing(edge: Edge) -> None:
    result = edge.client.slash_command(
        "/incident",
        "open Ranker p99",
        user_id=OPENER,
        channel_id=edge.slack.add_channel("ops", [OPENER]),
        team_id="T0OTHERTEAM",
    )
    edge.settle()
    assert result.status == 200 and result.text == ""
    assert edge.slack_calls("conversations.create") == []


def _request_form(resource: Any = "inference-logs-ro") -> dict[str, Any]:
    selected = (
        None
        if resource is None
        else {"value": resource, "text": {"type": "plain_text", "text": "r"}}
    )
    return {
        ids.RESOURCE_BLOCK: {
            ids.RESOURCE_INPUT: {"type": "static_select", "selected_option": selected}
        },
        ids.DURATION_BLOCK: {
            ids.DURATION_INPUT: {"type": "static_select", "selected_option": None}
        },
        ids.REASON_BLOCK: {ids.REASON_INPUT: {"type": "plain_text_input", "value": "drift"}},
    }


def _requests_in(edge: Edge, incident: Incident) -> int:
    with edge.deps.uow() as tx:
        return len(tx.requests.list_for_incident(incident.id))


def test_the_request_form_files_where_it_was_opened(edge: Edge) -> None:
    """The control for the forgeries below: the form the bot opened, submitted as is."""
    mine = edge.incident()
    edge.slack.workspace.channels[mine.channel_id].members.append(REQUESTER)
    opened = edge.client.slash_command(
        "/request-access", "", user_id=REQUESTER, channel_id=mine.channel_id
    )
    assert opened.status == 200
    deadline = time.monotonic() + 5
    while not edge.slack_calls("views.open") and time.monotonic() < deadline:
        time.sleep(0.02)
    sealed = edge.slack_calls("views.open")[0]["view"]
    sealed = json.loads(sealed) if isinstance(sealed, str) else sealed
    assert sealed["private_metadata"] != mine.channel_id  # signed, not the bare id

    result = edge.client.view_submission(REQUESTER, ids.REQUEST_ACCESS_VIEW, _request_form())
    edge.settle()

    assert result.status == 200 and result.json() is None
    assert _requests_in(edge, mine) == 1


@pytest.mark.parametrize("forgery", ["bare channel id", "signed for another user", "altered"])
def test_a_request_form_naming_another_incidents_channel_is_refused(
    edge: Edge, forgery: str
) -> None:
    """A form whose private_metadata names an incident the user is not in files nothing."""
    edge.incident(opener=REQUESTER, title="Mine")
    theirs = edge.incident(opener=LEAD, title="Theirs")
    seal = edge.deps.seal
    metadata = {
        "bare channel id": theirs.channel_id,
        "signed for another user": seal.sign(LEAD, theirs.channel_id),
        "altered": seal.sign(REQUESTER, "C0MINE").replace("C0MINE", theirs.channel_id),
    }[forgery]

    result = edge.client.view_submission(
        REQUESTER, ids.REQUEST_ACCESS_VIEW, _request_form(), private_metadata=metadata
    )
    edge.settle()

    assert result.status == 200
    answer = result.json()
    assert answer["response_action"] == "errors"
    assert "changed after Gatehouse opened it" in answer["errors"][ids.REASON_BLOCK]
    assert _requests_in(edge, theirs) == 0
    assert edge.broker.issued == []


def test_a_user_id_carrying_markup_is_refused_before_any_use(edge: Edge) -> None:
    """`U0X><!channel|x` is not a Slack user id: it never reaches an invite, a topic or a card."""
    channel = edge.slack.add_channel("ops", [OPENER])
    result = edge.client.slash_command(
        "/incident", "open Ranker p99", user_id="U0X><!channel|x", channel_id=channel
    )
    edge.settle()
    assert result.status == 200
    assert "could not read what Slack sent" in result.text
    for method in ("conversations.create", "conversations.invite", "conversations.setTopic"):
        assert edge.slack_calls(method) == []
    assert edge.slack_calls("chat.postMessage") == []


@pytest.mark.parametrize(
    "who",
    ["a bot", "a deactivated account", "Slackbot", "nobody", "a person"],
)
def test_the_new_commander_must_be_an_active_person(edge: Edge, who: str) -> None:
    """users.info says `is_bot` and `deleted` (https://api.slack.com/methods/users.info);
    Slackbot is neither, and is refused by its id."""
    edge.slack.add_user("U0ROBOT", "robot", is_bot=True)
    edge.slack.add_user("U0GONE", "gone", deleted=True)
    user = {
        "a bot": "U0ROBOT",
        "a deactivated account": "U0GONE",
        "Slackbot": "USLACKBOT",
        "nobody": "U0NOSUCHONE",
        "a person": LEAD,
    }[who]
    incident = edge.incident()

    result = edge.client.slash_command(
        "/incident",
        f"commander <@{user}|someone>",  # as Slack sends a mention (should_escape)
        user_id=OPENER,
        channel_id=incident.channel_id,
        raw=True,
    )
    edge.settle()

    assert result.status == 200
    now = incidents.find_incident_for_channel(uow=edge.deps.uow, channel_id=incident.channel_id)
    assert now is not None
    if who == "a person":
        assert now.commander_id == LEAD
        assert LEAD in edge.slack.workspace.channels[incident.channel_id].members
    else:
        assert now.commander_id == OPENER
        assert any("cannot be the commander" in text for text in edge.told(OPENER))


BIG = "R-" + "A" * 100_000


@pytest.mark.parametrize(
    "value",
    [5, {"request": "R-AAAAAAAA"}, ["R-AAAAAAAA"], None, BIG],
    ids=["number", "object", "list", "null", "100 KB id"],
)
def test_a_click_with_a_malformed_value_is_refused_and_the_clicker_told(
    edge: Edge, value: Any
) -> None:
    incident = edge.incident()
    request_id = edge.filed(incident.channel_id)
    click = edge.click(LEAD, ids.APPROVE, incident.channel_id)
    click["actions"][0]["value"] = value

    result = edge.payload(click)
    edge.settle()

    assert result.status == 200
    assert edge.broker.issued == []
    assert (
        access.get_request(uow=edge.deps.uow, request_id=request_id).state is RequestState.PENDING
    )
    told = edge.told(LEAD)
    assert any("could not read what Slack sent" in text for text in told)
    assert all(len(text) < 1000 for text in told)  # nothing echoed back whole


def test_a_click_without_actions_is_refused(edge: Edge) -> None:
    incident = edge.incident()
    edge.filed(incident.channel_id)
    click = edge.click(LEAD, ids.APPROVE, incident.channel_id)
    click["actions"] = []
    result = edge.payload(click)
    edge.settle()
    assert result.status == 200
    assert edge.broker.issued == []


def test_app_home_opened_without_a_user_is_ignored(edge: Edge) -> None:
    result = edge.client.event({"type": "app_home_opened", "tab": "home", "channel": "D0X"})
    edge.settle()
    assert result.status == 200
    assert edge.slack_calls("views.publish") == []


def test_a_request_form_without_a_resource_is_answered_in_the_form(edge: Edge) -> None:
    mine = edge.incident(opener=REQUESTER)
    metadata = edge.deps.seal.sign(REQUESTER, mine.channel_id)
    result = edge.client.view_submission(
        REQUESTER, ids.REQUEST_ACCESS_VIEW, _request_form(None), private_metadata=metadata
    )
    edge.settle()
    assert result.status == 200
    assert result.json() == {
        "response_action": "errors",
        "errors": {ids.RESOURCE_BLOCK: "Pick a resource."},
    }
    assert _requests_in(edge, mine) == 0


def test_an_unknown_request_id_of_100_kb_is_not_echoed_whole(edge: Edge) -> None:
    channel = edge.slack.add_channel("ops", [REQUESTER])
    result = edge.client.slash_command(
        "/access", f"cancel {BIG}", user_id=REQUESTER, channel_id=channel
    )
    edge.settle()
    assert result.status == 200
    assert len(result.body) < 2000


@pytest.mark.parametrize("signed", [False, True])
def test_a_deny_form_decides_only_the_request_its_signed_metadata_names(
    edge: Edge, signed: bool
) -> None:
    incident = edge.incident()
    request_id = edge.filed(incident.channel_id)
    reason = {
        ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"type": "plain_text_input", "value": "no"}}
    }
    metadata = f"{request_id}|{incident.channel_id}"
    if signed:
        metadata = edge.deps.seal.sign(LEAD, metadata)

    result = edge.client.view_submission(
        LEAD, ids.DENY_REASON_VIEW, reason, private_metadata=metadata
    )
    edge.settle()

    state = access.get_request(uow=edge.deps.uow, request_id=request_id).state
    if signed:
        assert result.json() is None and state is RequestState.DENIED
    else:
        assert result.json()["response_action"] == "errors"
        assert state is RequestState.PENDING
