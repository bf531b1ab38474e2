"""The incident channel runs itself, end to end: the bot over HTTP against the Slack and Vault
emulators, with an announce channel, an operators' channel, invited groups and PagerDuty not
configured. The channel hears only plain words; the operators get the details; the card's buttons
refuse whom the commands refuse; the channel is archived only `archive_after` past the close, by
the sweep."""

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import lifecycle
from bot.bootstrap import utc_now
from bot.domain.access import RequestState
from tests.emulators.slack import running_slack
from tests.emulators.slack.client import SlackClient
from tests.harness import ONCALL_EXAMPLE_POLICY, running_gatehouse
from tests.integration.test_slack_end_to_end import PEOPLE, Scene, request_id_in, scene_settings
from tests.integration.vault_support import MlDatabase
from tests.tools.vault_setup import SetUpVault
from tests.waiting import eventually

HASH = re.compile(r"\b[0-9a-f]{64}\b")
JARGON = ("GATEHOUSE_", "archive_after", "ops_channel", "gatehouse audit", "(s)")


class ChannelScene(Scene):
    announce: str
    ops: str

    def texts(self, channel: str) -> list[str]:
        """Every message of a channel, threads included, as posted (text and blocks)."""
        found = []
        for message in self.slack.messages(channel):
            found.append(message.text + json.dumps(message.blocks or []))
            for reply in self.slack.thread(channel, message.ts):
                found.append(reply.text + json.dumps(reply.blocks or []))
        return found


def _policy(folder: Path, announce: str, ops: str) -> Path:
    """The on-call example with the incident channel's settings; PagerDuty stays unconfigured."""
    text = ONCALL_EXAMPLE_POLICY.read_text(encoding="utf-8")
    settings = (
        f"  invite: [ml-leads]\n  announce_channel: {announce}\n  ops_channel: {ops}\ngroups:\n"
    )
    text = text.replace("groups:\n", settings, 1)
    policy = folder / "policy.yaml"
    policy.write_text(text, encoding="utf-8")
    return policy


@pytest.fixture
def scene(
    database_url: str, set_up_vault: SetUpVault, ml_database: MlDatabase, tmp_path: Path
) -> Iterator[ChannelScene]:
    with running_slack() as slack:
        for user_id, name in {**PEOPLE, "U0PLAT1": "margaret"}.items():
            slack.add_user(user_id, name, email=f"{name}@example.com")
        slack.add_usergroup("platform-leads", ["U0PLAT1"], group_id="S0PLATLEAD")
        general = slack.add_channel("war-room", members=list(PEOPLE))
        announce = slack.add_channel("incidents", bot_member=True)
        ops = slack.add_channel("gatehouse-ops", bot_member=True)
        settings = scene_settings(
            slack, set_up_vault, database_url, policy_path=_policy(tmp_path, announce, ops)
        )
        with running_gatehouse(settings) as bot:
            scene = ChannelScene(
                slack, bot, SlackClient(slack, bot.events_url), set_up_vault, ml_database, general
            )
            scene.announce, scene.ops = announce, ops
            yield scene


def test_the_incident_channel_runs_itself_in_plain_words(scene: ChannelScene) -> None:
    scene.command("/incident", "open ranker p99 sev1", "U0ONCALL1", scene.general)
    channel = scene.incident_channel()
    assert {"U0ONCALL1", "U0LEAD1", "U0LEAD2", "U0LEAD3"} <= set(channel.members)
    opened = eventually(lambda: scene.slack.messages(scene.announce))
    assert len(opened) == 1 and "opened · SEV1 · ranker p99" in opened[0].text
    assert f"<#{channel.id}>" in opened[0].text
    channel.members.append("U0ONCALL2")

    # PagerDuty is not configured: the channel hears one plain line, the operators the details.
    scene.command("/request-access", "inference-logs-ro 30m p99 spikes", "U0ONCALL2", channel.id)
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    note = eventually(lambda: scene.slack.thread(channel.id, card.ts))
    assert note[0].text == "ℹ️ On-call could not be checked; approvers will decide."
    details = eventually(lambda: scene.slack.messages(scene.ops))
    assert request_id in details[0].text and "GATEHOUSE_PAGERDUTY_TOKEN" in details[0].text

    # The card's buttons do what the commands do, with the same refusals.
    pinned = next(
        m
        for m in scene.slack.messages(channel.id)
        if "gatehouse.incident_close" in json.dumps(m.blocks or [])
    )
    incident_id = next(
        element["value"]
        for block in pinned.blocks or []
        for element in block.get("elements", [])
        if element.get("action_id") == "gatehouse.incident_close"
    )
    scene.click("U0LEAD1", "gatehouse.incident_close", channel.id, pinned.ts, incident_id)
    refused = eventually(lambda: scene.slack.ephemerals("U0LEAD1", channel.id))
    assert "Only the commander <@U0ONCALL1> or an incident admin can close" in refused[0].text
    scene.click("U0ONCALL2", "gatehouse.incident_request", channel.id, pinned.ts, incident_id)
    form = eventually(lambda: scene.slack.views("U0ONCALL2"))[-1]
    shown = json.dumps(form.body)
    assert "inference-logs-ro" in shown and '"4h"' in shown and '"8h"' not in shown
    scene.click("U0ONCALL1", "gatehouse.incident_hand_off", channel.id, pinned.ts, incident_id)
    handing = eventually(lambda: scene.slack.views("U0ONCALL1"))[-1]
    assert handing.body["callback_id"] == "gatehouse.hand_off"

    scene.click("U0LEAD1", "gatehouse.approve", channel.id, card.ts, request_id)
    eventually(lambda: scene.request_state(request_id) is RequestState.ACTIVE)

    scene.click("U0ONCALL1", "gatehouse.incident_close", channel.id, pinned.ts, incident_id)
    eventually(
        lambda: [
            v for v in scene.slack.views("U0ONCALL1") if v.body["callback_id"] == "gatehouse.close"
        ]
    )
    submitted = scene.people.view_submission(
        "U0ONCALL1",
        "gatehouse.close",
        {"resolution": {"resolution": {"type": "plain_text_input", "value": "rolled back"}}},
    )
    assert submitted.status == 200
    eventually(lambda: scene.request_state(request_id) is RequestState.REVOKED)
    summary = eventually(
        lambda: next((m for m in scene.slack.messages(channel.id) if "closed:" in m.text), None)
    )
    shown = json.dumps(summary.blocks)
    for words in ("ranker p99", "SEV1", "*Commander*", "<@U0ONCALL1>", "*Duration*"):
        assert words in shown
    assert "stays open for 1d, then is archived" in shown
    closed = eventually(lambda: scene.slack.messages(scene.announce)[1:])
    assert "closed after" in closed[0].text and "rolled back" in closed[0].text

    # No channel message names a setting, an environment variable or a hash.
    for text in scene.texts(channel.id) + scene.texts(scene.announce):
        assert not HASH.search(text), text
        assert not [word for word in JARGON if word in text], text
    report = eventually(
        lambda: next(
            (f for f in scene.slack.files() if f.title and "audit report" in f.title), None
        )
    )
    assert "gatehouse audit verify --anchor" in (report.content or b"").decode()

    # The channel stays open for archive_after; then the sweep archives it.
    eventually(lambda: _summary_posted(scene, incident_id))
    lifecycle.sweep(scene.bot.deps)
    assert not scene.slack.channel(channel.id).archived
    later = utc_now() + timedelta(hours=24, minutes=1)
    lifecycle.sweep(replace(scene.bot.deps, clock=lambda: later, follower=None))
    assert scene.slack.channel(channel.id).archived


def _summary_posted(scene: ChannelScene, incident_id: str) -> bool:
    with scene.bot.gatehouse.uow() as tx:
        incident = tx.incidents.get(incident_id)
    return incident is not None and not incident.summary_pending
