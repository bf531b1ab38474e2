"""The whole bot over HTTP with real signatures: Slack emulator, Vault emulator, real PostgreSQL
credentials, the store on SQLite and PostgreSQL."""

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import hvac
import pytest

from bot.config import Settings
from bot.domain.access import RequestState
from bot.domain.grant import GrantStatus
from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.slack.client import SendOptions, SlackClient
from tests.harness import RunningBot, bot_settings, running_gatehouse
from tests.integration.vault_support import MlDatabase
from tests.tools.vault_setup import SetUpVault
from tests.waiting import eventually

T = TypeVar("T")
PEOPLE = {
    "U0ONCALL1": "ada",
    "U0ONCALL2": "grace",
    "U0LEAD1": "linus",
    "U0LEAD2": "barbara",
    "U0LEAD3": "ken",
    "U0SEC1": "radia",
    "U0SEC2": "whit",
    "U0ADMIN1": "frances",
}


@dataclass
class Scene:
    slack: SlackEmulator
    bot: RunningBot
    people: SlackClient
    vault: SetUpVault
    database: MlDatabase
    general: str

    def command(self, command: str, text: str, user: str, channel: str) -> Any:
        result = self.people.slash_command(command, text, user_id=user, channel_id=channel)
        assert result.status == 200 and result.acked_in_time, result.text
        return result

    def incident_channel(self) -> Any:
        def channel_created() -> Any:
            return next(
                (
                    c
                    for c in self.slack.workspace.channels.values()
                    if c.name.startswith("inc-") and c.pins
                ),
                None,
            )

        return eventually(channel_created)

    def card(self, channel: str, request_marker: str = "gatehouse.approve") -> Any:
        def card_posted() -> Any:
            return next(
                (
                    m
                    for m in self.slack.messages(channel)
                    if request_marker in json.dumps(m.blocks or [])
                ),
                None,
            )

        return eventually(card_posted)

    def click(
        self,
        user: str,
        action_id: str,
        channel: str,
        ts: str,
        value: str,
        options: SendOptions | None = None,
    ) -> Any:
        result = self.people.block_action(
            user, action_id, value, channel_id=channel, message_ts=ts, options=options
        )
        assert result.status == 200 and result.acked_in_time
        return result

    def request_state(self, request_id: str) -> RequestState:
        with self.bot.gatehouse.uow() as tx:
            request = tx.requests.get(request_id)
        assert request is not None
        return request.state


def scene_settings(
    slack: SlackEmulator, vault: SetUpVault, database_url: str, **more: Any
) -> Settings:
    """The bot in HTTP mode against the Slack emulator and the Vault emulator."""
    return bot_settings(
        slack_bot_token=slack.bot_token,
        slack_signing_secret=slack.signing_secret,
        slack_api_url=slack.api_url,
        vault_addr=vault.emulator.url,
        vault_auth="approle",
        vault_role_id=vault.role_id,
        vault_secret_id=vault.secret_id,
        database_url=database_url,
        **more,
    )


@contextmanager
def running_scene(
    database_url: str, set_up_vault: SetUpVault, ml_database: MlDatabase
) -> Iterator[Scene]:
    """The bot served over HTTP against the Slack emulator, with PEOPLE and #war-room."""
    with running_slack() as slack:
        for user_id, name in PEOPLE.items():
            slack.add_user(user_id, name, email=f"{name}@example.com")
        general = slack.add_channel("war-room", members=list(PEOPLE))
        settings = scene_settings(slack, set_up_vault, database_url)
        with running_gatehouse(settings) as bot:
            yield Scene(
                slack, bot, SlackClient(slack, bot.events_url), set_up_vault, ml_database, general
            )


@pytest.fixture
def scene(database_url: str, set_up_vault: SetUpVault, ml_database: MlDatabase) -> Iterator[Scene]:
    with running_scene(database_url, set_up_vault, ml_database) as made:
        yield made


def request_id_in(message: Any) -> str:
    match = re.search(r"R-[A-Z2-7]{8}", message.text)
    assert match is not None
    return match.group(0)


def test_open_request_approve_twice_deliver_close(scene: Scene) -> None:
    slack = scene.slack
    opened = scene.command("/incident", "open Ranker p99 over 2s sev1", "U0ONCALL1", scene.general)
    assert "Opening an incident channel" in opened.text
    channel = scene.incident_channel()
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert channel.name == f"inc-{today}-ranker-p99-over-2s"
    assert channel.topic["value"] == "Commander: <@U0ONCALL1> · SEV1 · Open"
    channel.members.extend(["U0ONCALL2", "U0LEAD1", "U0SEC1"])  # people join the channel

    scene.command(
        "/request-access", "feature-store-rw 1h fix the <!channel> row", "U0ONCALL2", channel.id
    )
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    assert "&lt;!channel&gt;" in json.dumps(card.blocks)

    scene.click("U0LEAD1", "gatehouse.approve", channel.id, card.ts, request_id)

    def one_of_two() -> bool:
        updated = slack.channel(channel.id).find(card.ts)
        return updated is not None and "1 of 2" in json.dumps(updated.blocks)

    eventually(one_of_two)
    scene.click("U0SEC1", "gatehouse.approve", channel.id, card.ts, request_id)

    def delivered() -> Any:
        return next(
            (
                e
                for e in slack.ephemerals("U0ONCALL2", channel.id)
                if "vault unwrap" in json.dumps(e.blocks)
            ),
            None,
        )

    ephemeral = delivered() or eventually(delivered)
    wrapping = re.search(r"VAULT_TOKEN=(\S+) vault unwrap", json.dumps(ephemeral.blocks))
    assert wrapping is not None
    eventually(lambda: any("vault unwrap" in json.dumps(m.blocks) for m in slack.dms("U0ONCALL2")))
    # the card's last update and the requester's thread reply come right after the DM
    eventually(lambda: any("is ready" in m.text for m in slack.thread(channel.id, card.ts)))
    creds = hvac.Client(url=scene.vault.emulator.url, token=wrapping.group(1)).sys.unwrap()["data"]
    scene.database.users.append(creds["username"])
    assert creds["password"] not in json.dumps([e.blocks for e in slack.ephemerals("U0ONCALL2")])
    with scene.database.login(creds["username"], creds["password"]) as session:
        session.execute("INSERT INTO feature_store.features VALUES (%s, 1)", (request_id,))
    assert scene.request_state(request_id) is RequestState.ACTIVE

    scene.command("/incident", "close rolled back the feature row", "U0ONCALL1", channel.id)
    eventually(lambda: slack.channel(channel.id).archived)
    assert not scene.database.role_exists(creds["username"])
    assert scene.request_state(request_id) is RequestState.REVOKED
    summary = next(m for m in slack.messages(channel.id) if "audit summary" in m.text)
    assert summary.ts in slack.pins(channel.id)
    assert any(
        f.get("title", "").endswith("audit report")
        for f in (file for message in slack.messages(channel.id) for file in message.files or [])
    )
    # Each approver's task, privately: one DM each, redrawn as the request moved on; the
    # card in the channel mentions none of them.
    approvers = ("U0LEAD1", "U0LEAD2", "U0LEAD3", "U0SEC1", "U0SEC2")
    for approver in approvers:
        (task,) = slack.dms(approver)
        assert request_id in task.text and "gatehouse.approve" not in json.dumps(task.blocks)
    posted = next(
        c.args
        for c in slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel.id and request_id in str(c.args.get("text"))
    )
    assert not any(f"<@{a}>" in json.dumps(posted) for a in approvers)  # as posted: no pings
    private = {c.id for a in approvers if (c := slack.dm_channel(a)) is not None}

    def in_channel(call: Any) -> bool:
        if call.method == "conversations.open":
            return call.args.get("users") not in approvers
        return call.args.get("channel") not in private

    methods = [c.method for c in slack.calls if c.method != "auth.test" and in_channel(c)]
    assert methods == [
        # /incident open: channel, opener invited, topic, card, pin
        "conversations.create", "conversations.invite", "conversations.setTopic",
        "chat.postMessage", "pins.add",
        # /request-access: the approval card
        "chat.postMessage",
        # two approvals: the card after the first, then straight to Vault after the second:
        # the private delivery (ephemeral and DM), the card and the requester in the thread
        "chat.update", "chat.postEphemeral", "conversations.open",
        "chat.postMessage", "chat.update", "chat.postMessage",
        # /incident close: the credential DM redrawn without the credential, the request
        # card, the incident card and topic, the summary pinned, the report uploaded, and
        # the channel archived last
        "chat.update", "chat.update", "chat.update", "conversations.setTopic",
        "chat.postMessage", "pins.add",
        "files.getUploadURLExternal", "files.completeUploadExternal", "conversations.archive",
    ]  # fmt: skip
    assert slack.unmodelled_calls() == []


def test_self_approval_and_non_approvers_are_refused_privately(scene: Scene) -> None:
    scene.command("/incident", "open drift sev3", "U0ONCALL1", scene.general)
    channel = scene.incident_channel()
    channel.members.extend(["U0ONCALL2", "U0SEC1"])
    scene.command("/request-access", "inference-logs-ro 30m look at drift", "U0ONCALL2", channel.id)
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    scene.click("U0ONCALL2", "gatehouse.approve", channel.id, card.ts, request_id)
    scene.click("U0SEC1", "gatehouse.approve", channel.id, card.ts, request_id)
    eventually(lambda: len(scene.slack.ephemerals("U0SEC1", channel.id)) >= 1)
    refusal = scene.slack.ephemerals("U0SEC1", channel.id)[0].text
    assert "not an approver" in refusal and "<@U0LEAD1>" in refusal
    assert scene.request_state(request_id) is RequestState.PENDING


def test_double_clicks_retries_and_simultaneous_approvers_issue_once(scene: Scene) -> None:
    scene.command("/incident", "open double click", "U0ONCALL1", scene.general)
    channel = scene.incident_channel()
    channel.members.extend(["U0ONCALL2"])
    scene.command("/request-access", "feature-store-rw 30m patch", "U0ONCALL2", channel.id)
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    clicks = [
        ("U0LEAD1", None),
        ("U0LEAD1", SendOptions(retry_num=1)),
        ("U0SEC1", None),
        ("U0SEC1", SendOptions(retry_num=1)),
    ]
    threads = [
        threading.Thread(
            target=scene.click,
            args=(user, "gatehouse.approve", channel.id, card.ts, request_id, options),
        )
        for user, options in clicks
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    eventually(lambda: scene.request_state(request_id) is RequestState.ACTIVE)

    def deliveries() -> list[Any]:
        return [
            e for e in scene.slack.ephemerals("U0ONCALL2") if "vault unwrap" in json.dumps(e.blocks)
        ]

    eventually(deliveries)
    time.sleep(0.5)  # let any duplicate work finish
    with scene.bot.gatehouse.uow() as tx:
        grants = tx.grants.list_for_request(request_id)
    assert [g.status for g in grants] == [GrantStatus.ACTIVE]
    assert len(deliveries()) == 1


def test_slack_429_is_waited_out_and_nothing_is_lost(scene: Scene) -> None:
    scene.slack.rate_limit_next("chat.postMessage", count=1, retry_after=1)
    scene.command("/incident", "open rate limited", "U0ONCALL1", scene.general)
    channel = scene.incident_channel()
    assert any(m for m in scene.slack.messages(channel.id) if "rate limited" in m.text)
    statuses = [c.status for c in scene.slack.calls_to("chat.postMessage")]
    assert 429 in statuses


def test_forms_open_an_incident_file_a_request_and_deny_with_a_reason(scene: Scene) -> None:
    slack = scene.slack
    scene.command("/incident", "", "U0ONCALL1", scene.general)
    eventually(lambda: [v for v in slack.views("U0ONCALL1") if not v.closed])
    submitted = scene.people.view_submission(
        "U0ONCALL1",
        "gatehouse.open_incident",
        {
            "title": {"title": {"type": "plain_text_input", "value": "Feature store lag"}},
            "severity": {
                "severity": {"type": "static_select", "selected_option": {"value": "sev3"}}
            },
        },
    )
    assert submitted.status == 200
    channel = scene.incident_channel()
    assert "SEV3" in channel.topic["value"]
    channel.members.extend(["U0ONCALL2", "U0LEAD2"])

    scene.command("/request-access", "", "U0ONCALL2", channel.id)
    eventually(lambda: [v for v in slack.views("U0ONCALL2") if not v.closed])
    empty = scene.people.view_submission(
        "U0ONCALL2",
        "gatehouse.request_access",
        {
            "resource": {
                "resource": {
                    "type": "static_select",
                    "selected_option": {"value": "inference-logs-ro"},
                }
            },
            "reason": {"reason": {"type": "plain_text_input", "value": "  "}},
        },
    )
    assert empty.json()["response_action"] == "errors"  # nothing lost: the form stays open
    scene.people.view_submission(
        "U0ONCALL2",
        "gatehouse.request_access",
        {
            "resource": {
                "resource": {
                    "type": "static_select",
                    "selected_option": {"value": "inference-logs-ro"},
                }
            },
            "duration": {
                "duration": {"type": "static_select", "selected_option": {"value": "30m"}}
            },
            "reason": {"reason": {"type": "plain_text_input", "value": "lag graphs"}},
        },
    )
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    scene.click("U0LEAD2", "gatehouse.deny", channel.id, card.ts, request_id)
    eventually(lambda: [v for v in slack.views("U0LEAD2") if not v.closed])
    scene.people.view_submission(
        "U0LEAD2",
        "gatehouse.deny_reason",
        {"deny_reason": {"reason": {"type": "plain_text_input", "value": "use the dashboard"}}},
    )
    eventually(lambda: scene.request_state(request_id) is RequestState.DENIED)

    def denied_card() -> bool:
        updated = slack.channel(channel.id).find(card.ts)
        text = json.dumps(updated.blocks if updated else [])
        return "use the dashboard" in text and "gatehouse.approve" not in text

    eventually(denied_card)


def test_unsigned_and_stale_requests_are_refused(scene: Scene) -> None:
    forged = scene.people.slash_command(
        "/incident",
        "open forged",
        user_id="U0ONCALL1",
        channel_id=scene.general,
        options=SendOptions(corrupt_signature=True),
    )
    stale = scene.people.slash_command(
        "/incident",
        "open stale",
        user_id="U0ONCALL1",
        channel_id=scene.general,
        options=SendOptions(timestamp=int(time.time()) - 6 * 60),
    )
    assert (forged.status, stale.status) == (401, 401)
    time.sleep(0.3)
    assert not [c for c in scene.slack.workspace.channels.values() if c.name.startswith("inc-")]


def test_approving_from_app_home_and_errors_by_dm(scene: Scene) -> None:
    slack = scene.slack
    scene.command("/incident", "open from home", "U0ONCALL1", scene.general)
    channel = scene.incident_channel()
    channel.members.append("U0ONCALL2")
    scene.command("/request-access", "inference-logs-ro 30m from home", "U0ONCALL2", channel.id)
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    opened = scene.people.event(
        {
            "type": "app_home_opened",
            "user": "U0LEAD1",
            "tab": "home",
            "channel": "D0HOME",
            "event_ts": str(time.time()),
        }
    )
    assert opened.status == 200
    home = eventually(lambda: slack.home_tab("U0LEAD1"))
    assert request_id in json.dumps(home.body)
    clicked = scene.people.block_action("U0LEAD1", "gatehouse.approve", request_id, view_id=home.id)
    assert clicked.status == 200
    eventually(lambda: scene.request_state(request_id) is RequestState.ACTIVE)
    # the home tab is published again without the request; a second click is told by DM
    eventually(lambda: request_id not in json.dumps(slack.home_tab("U0LEAD1").body))  # type: ignore[union-attr]
    scene.people.block_action("U0LEAD1", "gatehouse.approve", request_id, view_id=home.id)
    eventually(lambda: any("already approved" in m.text for m in slack.dms("U0LEAD1")))
