"""What the answer to a new request or incident promises holds when Slack or PagerDuty fails
after it: the bot over HTTP against the emulators, the store on SQLite and PostgreSQL, and
the notifier and recovery run by the test as their timers run them."""

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot.app import lifecycle
from bot.app.lifecycle import OPENING_GRACE
from bot.domain.access import AccessRequest, RequestState
from bot.domain.audit import Action
from tests.emulators.pagerduty import running_pagerduty
from tests.emulators.slack import running_slack
from tests.emulators.slack.client import SlackClient
from tests.harness import ONCALL_EXAMPLE_POLICY, archiving_at_once, running_gatehouse
from tests.integration.test_oncall_end_to_end import OnCallScene
from tests.integration.test_slack_end_to_end import PEOPLE, request_id_in, scene_settings
from tests.integration.vault_support import MlDatabase
from tests.tools.vault_setup import SetUpVault
from tests.waiting import eventually


def recover_later(scene: OnCallScene) -> None:
    """One recovery pass as the sweep runs it once the opening's grace is over."""
    later = OPENING_GRACE + timedelta(seconds=1)
    real = scene.bot.deps.clock
    lifecycle.recover(replace(scene.bot.deps, clock=lambda: real() + later))


@pytest.fixture
def scene(
    database_url: str, set_up_vault: SetUpVault, ml_database: MlDatabase
) -> Iterator[OnCallScene]:
    """PagerDuty's own timeout (5 s) is longer than the lookups' budget in the ack."""
    with running_slack() as slack, running_pagerduty() as pagerduty:
        for user_id, name in {**PEOPLE, "U0PLAT1": "margaret"}.items():
            slack.add_user(user_id, name, email=f"{name}@example.com")
        slack.add_usergroup("platform-leads", ["U0PLAT1"], group_id="S0PLATLEAD")
        grace = pagerduty.add_user("Grace Hopper", "grace@example.com")
        pagerduty.put_on_call(grace, escalation_policy="PEPML01", schedule="P7ML0NC")
        general = slack.add_channel("war-room", members=[*PEOPLE, "U0PLAT1"])
        settings = scene_settings(
            slack,
            set_up_vault,
            database_url,
            policy_path=archiving_at_once(ONCALL_EXAMPLE_POLICY),
            pagerduty_token=pagerduty.token,
            pagerduty_api_url=pagerduty.url,
            pagerduty_timeout=5.0,
        )
        with running_gatehouse(settings) as bot:
            scene = OnCallScene(
                slack, bot, SlackClient(slack, bot.events_url), set_up_vault, ml_database, general
            )
            scene.pagerduty = pagerduty
            yield scene


def filed_in(scene: OnCallScene, channel: str) -> list[AccessRequest]:
    with scene.bot.gatehouse.uow() as tx:
        incident = tx.incidents.get_by_channel(channel)
        assert incident is not None
        return list(tx.requests.list_for_incident(incident.id))


def test_a_slow_pagerduty_is_given_up_on_inside_the_ack_and_the_request_filed_before_it(
    scene: OnCallScene,
) -> None:
    channel = scene.open_incident("pagerduty crawling")
    scene.pagerduty.answer_slowly(4)

    started = time.monotonic()
    scene.command("/request-access", "inference-logs-ro 30m p99 spikes", "U0ONCALL2", channel.id)
    answered_in = time.monotonic() - started

    (request,) = filed_in(scene, channel.id)  # committed before the 200
    assert request.state is RequestState.PENDING  # on call, but not known in time
    assert answered_in < 3
    card = scene.card(channel.id)
    assert request_id_in(card) == request.id
    note = eventually(lambda: scene.thread_text(channel.id, card.ts))
    assert note == "ℹ️ On-call could not be checked; approvers will decide."
    (failed,) = scene.audit(request.id, Action.GROUP_LOOKUP_FAILED)  # the details, on record
    assert "ml-primary" in failed["error"] and "could not be looked up in time" in failed["error"]
    assert "no answer within 1.5 s" in failed["error"]


def test_a_card_slack_refuses_is_promised_once_and_posted_when_slack_answers(
    scene: OnCallScene,
) -> None:
    channel = scene.open_incident("slack flaky")
    scene.slack.fail_next("chat.postMessage", "internal_error", count=1)

    scene.command("/request-access", "feature-store-rw 30m backfill", "U0ONCALL2", channel.id)

    (request,) = filed_in(scene, channel.id)
    promise = f"Filed {request.id}; its card will appear here when Slack answers."
    told = eventually(
        lambda: [p for p in scene.slack.responses("U0ONCALL2") if promise in str(p.body)]
    )

    def cards() -> list[Any]:
        return [m for m in scene.slack.messages(channel.id) if request.id in m.text]

    assert cards() == []

    def shown() -> list[Any]:
        scene.bot.deps.notify(wait=True)  # as the notifier's timer does, after its pause
        return cards()

    eventually(shown, "the card once Slack answers", timeout=10)
    scene.bot.deps.notify(wait=True)
    assert len(cards()) == 1 and "gatehouse.approve" in str(cards()[0].blocks)
    assert len(filed_in(scene, channel.id)) == 1 and len(told) == 1


def test_an_incident_whose_channel_slack_refused_gets_it_later_and_the_opener_is_told(
    scene: OnCallScene,
) -> None:
    scene.slack.fail_next("conversations.create", "internal_error", count=1)

    scene.command("/incident", "open search down", "U0ONCALL1", scene.general)

    refused = eventually(
        lambda: [p for p in scene.slack.responses("U0ONCALL1") if "did not make" in str(p.body)]
    )
    assert "you will get a direct message saying where" in str(refused[0].body)
    assert not [c for c in scene.slack.workspace.channels.values() if "search" in c.name]
    recover_later(scene)
    recover_later(scene)
    channel = scene.incident_channel()
    with scene.bot.gatehouse.uow() as tx:
        incident = tx.incidents.get_by_channel(channel.id)
    assert incident is not None and incident.title == "search down"
    told = eventually(lambda: [m for m in scene.slack.dms("U0ONCALL1") if incident.id in m.text])
    assert len(told) == 1 and f"<#{channel.id}>" in told[0].text
    assert len([c for c in scene.slack.workspace.channels.values() if "search" in c.name]) == 1
