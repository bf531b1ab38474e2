"""On-call and identity end to end: the bot over HTTP with real signatures, the Slack, Vault and
PagerDuty emulators, real PostgreSQL credentials, the store on SQLite and PostgreSQL."""

import json
import re
from collections.abc import Iterator
from typing import Any

import hvac
import pytest

from bot.domain.access import RequestState
from bot.domain.audit import Action
from bot.domain.grant import GrantStatus
from tests.emulators.pagerduty import PagerDutyEmulator, running_pagerduty
from tests.emulators.slack import running_slack
from tests.emulators.slack.client import SlackClient
from tests.harness import ONCALL_EXAMPLE_POLICY, archiving_at_once, running_gatehouse
from tests.integration.test_slack_end_to_end import PEOPLE, Scene, request_id_in, scene_settings
from tests.integration.vault_support import MlDatabase
from tests.tools.vault_setup import SetUpVault
from tests.waiting import eventually


class OnCallScene(Scene):
    pagerduty: PagerDutyEmulator

    def open_incident(self, title: str) -> Any:
        self.command("/incident", f"open {title}", "U0ONCALL1", self.general)
        channel = self.incident_channel()
        channel.members.extend(["U0ONCALL2", "U0LEAD1", "U0PLAT1"])
        return channel

    def thread_text(self, channel: str, ts: str) -> str:
        return "\n".join(m.text for m in self.slack.thread(channel, ts))

    def delivered(self, user: str) -> Any:
        return next(
            (e for e in self.slack.ephemerals(user) if "vault unwrap" in json.dumps(e.blocks)),
            None,
        )

    def audit(self, request_id: str, action: Action) -> list[dict[str, Any]]:
        with self.bot.gatehouse.uow() as tx:
            return [
                dict(e.entry.data)
                for e in tx.audit.events()
                if e.entry.request_id == request_id and e.entry.action == action
            ]


@pytest.fixture
def scene(
    database_url: str, set_up_vault: SetUpVault, ml_database: MlDatabase
) -> Iterator[OnCallScene]:
    with running_slack() as slack, running_pagerduty() as pagerduty:
        for user_id, name in {**PEOPLE, "U0PLAT1": "margaret"}.items():
            slack.add_user(user_id, name, email=f"{name}@example.com")
        slack.add_usergroup("platform-leads", ["U0PLAT1"], group_id="S0PLATLEAD")
        grace = pagerduty.add_user("Grace Hopper", "grace@example.com")
        pagerduty.add_user("Ada Lovelace", "ada@example.com")
        pagerduty.put_on_call(grace, escalation_policy="PEPML01", schedule="P7ML0NC")
        general = slack.add_channel("war-room", members=[*PEOPLE, "U0PLAT1"])
        settings = scene_settings(
            slack,
            set_up_vault,
            database_url,
            policy_path=archiving_at_once(ONCALL_EXAMPLE_POLICY),
            pagerduty_token=pagerduty.token,
            pagerduty_api_url=pagerduty.url,
            pagerduty_timeout=0.5,
        )
        with running_gatehouse(settings) as bot:
            scene = OnCallScene(
                slack, bot, SlackClient(slack, bot.events_url), set_up_vault, ml_database, general
            )
            scene.pagerduty = pagerduty
            yield scene


def test_on_call_is_approved_at_once_told_to_approvers_revocable_and_summarized(
    scene: OnCallScene,
) -> None:
    channel = scene.open_incident("ranker p99")
    scene.command("/request-access", "inference-logs-ro 30m p99 spikes", "U0ONCALL2", channel.id)
    card = scene.card(channel.id, request_marker="Auto-approved")
    request_id = request_id_in(card)
    assert "on call in ml-primary (PagerDuty schedule P7ML0NC)" in json.dumps(card.blocks)

    ephemeral = eventually(lambda: scene.delivered("U0ONCALL2"))
    wrapping = re.search(r"VAULT_TOKEN=(\S+) vault unwrap", json.dumps(ephemeral.blocks))
    assert wrapping is not None
    creds = hvac.Client(url=scene.vault.emulator.url, token=wrapping.group(1)).sys.unwrap()["data"]
    scene.database.users.append(creds["username"])
    with scene.database.login(creds["username"], creds["password"]) as session:
        session.execute("SELECT 1")
    eventually(lambda: "is ready" in scene.thread_text(channel.id, card.ts))
    told = scene.thread_text(channel.id, card.ts)
    assert "was approved automatically" in told and "<@U0LEAD1>" in told
    assert f"/access revoke {request_id}" in told
    (grounds,) = scene.audit(request_id, Action.REQUEST_AUTO_APPROVED)
    assert (grounds["ref"], grounds["schedule_id"]) == ("P7ML0NC", "P7ML0NC")
    assert grounds["escalation_policy_id"] == "PEPML01" and grounds["escalation_level"] == 1
    assert (
        grounds["pagerduty_user_id"] == scene.pagerduty.calls_to("/users")[0].body["users"][0]["id"]
    )
    with scene.bot.gatehouse.uow() as tx:
        assert [g.status for g in tx.grants.list_for_request(request_id)] == [GrantStatus.ACTIVE]

    scene.command("/access", f"revoke {request_id}", "U0LEAD1", channel.id)
    eventually(lambda: scene.request_state(request_id) is RequestState.REVOKED)
    eventually(lambda: not scene.database.role_exists(creds["username"]))

    scene.command("/incident", "close false alarm", "U0ONCALL1", channel.id)
    eventually(lambda: scene.slack.channel(channel.id).archived)
    summary = next(m for m in scene.slack.messages(channel.id) if "audit summary" in m.text)
    assert "auto-approved: on call in ml-primary" in json.dumps(summary.blocks)
    report = next(f for f in scene.slack.files() if f.title and "audit report" in f.title)
    assert "Approved automatically: on call in ml-primary" in (report.content or b"").decode()


@pytest.mark.parametrize("failure", ["down", "slow", "401", "malformed"])
def test_pagerduty_failing_falls_back_to_ordinary_approval_with_a_note(
    scene: OnCallScene, failure: str
) -> None:
    reasons = {
        "down": "PagerDuty could not be reached",
        "slow": "PagerDuty did not answer within 0.5 s",
        "401": "PagerDuty refused the API key (401)",
        "malformed": "could not read",
    }
    if failure == "down":
        scene.pagerduty.stop()
    elif failure == "slow":
        scene.pagerduty.answer_slowly(2)
    elif failure == "401":
        scene.pagerduty.revoke_token()
    else:
        scene.pagerduty.send_malformed_next(count=10)
    channel = scene.open_incident(f"pagerduty {failure}")

    scene.command("/request-access", "inference-logs-ro 30m p99 spikes", "U0ONCALL2", channel.id)
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    note = eventually(lambda: scene.thread_text(channel.id, card.ts))
    assert note == "ℹ️ On-call could not be checked; approvers will decide."
    (failed,) = scene.audit(request_id, Action.GROUP_LOOKUP_FAILED)  # the details, on record
    assert reasons[failure] in failed["error"]
    assert scene.request_state(request_id) is RequestState.PENDING
    assert scene.audit(request_id, Action.REQUEST_AUTO_APPROVED) == []

    scene.pagerduty.answer_slowly(0)
    scene.click("U0LEAD1", "gatehouse.approve", channel.id, card.ts, request_id)
    eventually(lambda: scene.request_state(request_id) is RequestState.ACTIVE)


def test_the_commander_and_a_slack_user_group_approve_never_their_own(
    scene: OnCallScene,
) -> None:
    channel = scene.open_incident("serving pods stuck")
    scene.command("/request-access", "serving-cluster-exec 20m stuck pods", "U0ONCALL2", channel.id)
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    shown = json.dumps(card.blocks)
    # The card names where approvers come from and pings none of them; each has a task.
    assert "`ml-leads`, `platform-leads`" in shown and "<@U0PLAT1>" not in shown

    def task_of(approver: str) -> list[Any]:
        return [m for m in scene.slack.dms(approver) if request_id in m.text]

    eventually(lambda: task_of("U0PLAT1"))  # the user group's member
    eventually(lambda: task_of("U0ONCALL1"))  # the commander
    scene.click("U0ONCALL1", "gatehouse.approve", channel.id, card.ts, request_id)
    eventually(lambda: scene.request_state(request_id) is RequestState.ACTIVE)

    scene.command("/request-access", "serving-cluster-exec 20m me too", "U0ONCALL1", channel.id)
    own = eventually(
        lambda: next(
            (
                m
                for m in scene.slack.messages(channel.id)
                if "gatehouse.approve" in json.dumps(m.blocks or []) and m.ts != card.ts
            ),
            None,
        )
    )
    own_id = request_id_in(own)
    assert "incident commander" not in json.dumps(own.blocks)
    scene.click("U0ONCALL1", "gatehouse.approve", channel.id, own.ts, own_id)
    refusal = eventually(lambda: scene.slack.ephemerals("U0ONCALL1", channel.id))
    assert "your own request" in refusal[0].text
    assert scene.request_state(own_id) is RequestState.PENDING
    scene.click("U0PLAT1", "gatehouse.approve", channel.id, own.ts, own_id)
    eventually(lambda: scene.request_state(own_id) is RequestState.ACTIVE)
