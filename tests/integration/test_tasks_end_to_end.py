"""Approvers get tasks, the requester is kept informed privately, end to end: the bot over
HTTP against the Slack and Vault emulators, on SQLite and PostgreSQL, with the clock moved
for the reminder, the expiry warning and the end of access (the sweeps run with a later
clock, as `test_incident_channel_end_to_end` does for the archive).

Each approver gets the request once, by DM, with the buttons; the card mentions none of
them; the one reminder reaches only those who have not decided; a decision redraws every
task without its buttons, saying who decided; the requester hears of a denial by DM with the
reason, is warned before access ends with an Extend that offers only the headroom, and the
credential DM loses its credential and its buttons when access ends."""

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.app import lifecycle
from bot.bootstrap import utc_now
from bot.domain.access import RequestState
from bot.domain.durations import parse_duration
from bot.slack import ids
from tests.integration.test_slack_end_to_end import PEOPLE, Scene, request_id_in, running_scene
from tests.integration.vault_support import MlDatabase
from tests.tools.vault_setup import SetUpVault
from tests.waiting import eventually

REQUESTER, COMMANDER = "U0ONCALL2", "U0ONCALL1"
LEADS = ("U0LEAD1", "U0LEAD2", "U0LEAD3")  # inference-logs-ro's approvers
APPROVERS = (*LEADS, "U0SEC1", "U0SEC2")  # feature-store-rw's: two of them must approve
DECISIONS = {ids.APPROVE, ids.DENY}


@pytest.fixture
def scene(database_url: str, set_up_vault: SetUpVault, ml_database: MlDatabase) -> Iterator[Scene]:
    with running_scene(database_url, set_up_vault, ml_database) as made:
        yield made


def about(scene: Scene, user: str, request_id: str) -> list[Any]:
    """The DMs `user` has about the request, as they read now (redrawn in place)."""
    return [m for m in scene.slack.dms(user) if request_id in m.text]


def one_about(scene: Scene, user: str, request_id: str) -> Any:
    """The one DM `user` has about the request, once it is there."""
    (message,) = eventually(lambda: about(scene, user, request_id))
    return message


def buttons(message: Any) -> set[str]:
    return {
        str(element.get("action_id"))
        for block in message.blocks or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    }


def shown(message: Any) -> str:
    return str(message.text) + json.dumps(message.blocks or [], ensure_ascii=False)


def dm_click(scene: Scene, user: str, action: str, message: Any, request_id: str) -> None:
    """A button clicked where the person has it: their DM with the bot."""
    channel = scene.slack.dm_channel(user)
    assert channel is not None
    scene.click(user, action, channel.id, message.ts, request_id)


def sweep_at(scene: Scene, moment: datetime) -> None:
    """One sweep as if it were `moment`, its events told by a follower on the same clock
    (waiting for the bot's own follower, which may be telling a click's outcome)."""
    later = replace(scene.bot.deps, clock=lambda: moment, follower=None)
    lifecycle.sweep(later)
    assert later.notify_through(), "the sweep's events were not all told"


def ends_at(scene: Scene, request_id: str) -> datetime:
    with scene.bot.gatehouse.uow() as tx:
        request = tx.requests.get(request_id)
    assert request is not None and request.ends_at is not None
    return request.ends_at


def test_tasks_reminders_outcomes_and_the_warning_privately(scene: Scene) -> None:
    slack = scene.slack
    scene.command("/incident", "open ranker features stale sev2", COMMANDER, scene.general)
    channel = scene.incident_channel()
    channel.members.extend(p for p in PEOPLE if p not in channel.members)

    # A denial: the leads' tasks are redrawn to say who denied it, the requester hears why.
    scene.command("/request-access", "inference-logs-ro 30m read the logs", REQUESTER, channel.id)
    denied = request_id_in(scene.card(channel.id))
    tasks = {lead: one_about(scene, lead, denied) for lead in LEADS}
    dm_click(scene, "U0LEAD2", ids.DENY, tasks["U0LEAD2"], denied)
    form = eventually(lambda: slack.views("U0LEAD2"))[-1]
    assert form.body["callback_id"] == ids.DENY_REASON_VIEW
    form_shown = json.dumps(form.body)
    assert "<@U0ONCALL2>" in form_shown and "inference-logs-ro" in form_shown
    submitted = scene.people.view_submission(
        "U0LEAD2",
        ids.DENY_REASON_VIEW,
        {"deny_reason": {"reason": {"type": "plain_text_input", "value": "use the dashboards"}}},
        view_id=form.id,
    )
    assert submitted.status == 200
    eventually(lambda: scene.request_state(denied) is RequestState.DENIED)
    told = eventually(lambda: about(scene, REQUESTER, denied))
    assert len(told) == 1 and "use the dashboards" in shown(told[0])
    assert "<@U0LEAD2>" in shown(told[0]) and buttons(told[0]) == set()
    eventually(lambda: all(not buttons(t) for lead in LEADS for t in about(scene, lead, denied)))
    for lead in LEADS:
        (task,) = about(scene, lead, denied)
        assert "denied" in shown(task) and "use the dashboards" in shown(task)

    # Two approvals needed: each of the five gets one task with the buttons, and the card,
    # as posted and as it reads now, mentions none of them.
    scene.command(
        "/request-access", "feature-store-rw 30m backfill stale features", REQUESTER, channel.id
    )
    card = scene.card(channel.id, "backfill stale features")
    request_id = request_id_in(card)
    for approver in APPROVERS:
        task = one_about(scene, approver, request_id)
        assert buttons(task) == DECISIONS, approver
        assert "feature-store-rw" in shown(task) and "backfill stale features" in shown(task)
    for person in (REQUESTER, COMMANDER, "U0ADMIN1"):
        assert [
            m for m in about(scene, person, request_id) if "gatehouse.approve" in shown(m)
        ] == []
    (posted,) = [
        c.args
        for c in slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel.id and request_id in str(c.args.get("text"))
    ]
    now_shown = shown(slack.channel(channel.id).find(card.ts))
    for approver in APPROVERS:
        assert f"<@{approver}>" not in json.dumps(posted) and f"<@{approver}>" not in now_shown
    assert "<!" not in json.dumps(posted)  # nor @here, @channel or a user group

    # One approves from their task: theirs loses its buttons, the others keep theirs.
    (first,) = about(scene, "U0LEAD1", request_id)
    dm_click(scene, "U0LEAD1", ids.APPROVE, first, request_id)
    eventually(lambda: not buttons(about(scene, "U0LEAD1", request_id)[0]))
    assert "You approved it" in shown(about(scene, "U0LEAD1", request_id)[0])
    assert scene.request_state(request_id) is RequestState.PENDING

    # Past reminder_after: the one reminder goes only to the four who have not decided,
    # with the buttons; the thread says so without mentioning anyone.
    sweep_at(scene, utc_now() + timedelta(minutes=11))
    undecided = [a for a in APPROVERS if a != "U0LEAD1"]
    for approver in undecided:
        task, reminder = about(scene, approver, request_id)
        assert "Still waiting on you" in shown(reminder) and buttons(reminder) == DECISIONS
        assert buttons(task) == DECISIONS
    assert len(about(scene, "U0LEAD1", request_id)) == 1
    (note,) = [r for r in slack.thread(channel.id, card.ts) if "reminded privately" in r.text]
    assert "<@" not in note.text and "the 4 approvers who have not decided" in note.text

    # The second approval, from a reminder: every task and reminder is redrawn without its
    # buttons, naming who approved; the credential reaches the requester by DM.
    dm_click(scene, "U0SEC1", ids.APPROVE, about(scene, "U0SEC1", request_id)[1], request_id)
    eventually(lambda: scene.request_state(request_id) is RequestState.ACTIVE)
    credential = eventually(
        lambda: next(
            (m for m in about(scene, REQUESTER, request_id) if "vault unwrap" in shown(m)), None
        )
    )
    assert ids.EXTEND in buttons(credential)

    def redrawn() -> bool:
        return all(not buttons(m) for a in APPROVERS for m in about(scene, a, request_id))

    eventually(redrawn)
    # The card is redrawn in the same pass as the tasks, not necessarily before them.
    decided = eventually(
        lambda: next(
            (d for d in [shown(slack.channel(channel.id).find(card.ts))] if "Can approve" not in d),
            None,
        ),
        "the decided card without its Can approve line",
    )
    assert "Can approve" not in decided and "<@U0LEAD1>" in decided and "<@U0SEC1>" in decided
    for approver in undecided:
        for message in about(scene, approver, request_id):
            assert "<@U0LEAD1>" in shown(message) and "<@U0SEC1>" in shown(message)

    # Within expiry_warning of the end: the requester is warned once, with Extend, and the
    # form it opens offers only what max_ttl (2h) leaves of the 30m granted.
    end = ends_at(scene, request_id)
    sweep_at(scene, end - timedelta(minutes=5))
    sweep_at(scene, end - timedelta(minutes=4))  # warned once per end
    warnings = [m for m in about(scene, REQUESTER, request_id) if "ends" in m.text]
    assert len(warnings) == 1
    (warning,) = warnings
    assert buttons(warning) == {ids.EXTEND}
    assert "extended by at most 1h30m" in shown(warning)
    before = len(slack.views(REQUESTER))
    dm_click(scene, REQUESTER, ids.EXTEND, warning, request_id)
    extend_form = eventually(lambda: slack.views(REQUESTER)[before:])[-1].body
    offered = [
        parse_duration(option["value"])
        for block in extend_form["blocks"]
        if block.get("block_id") == "extend_duration"
        for option in block["element"]["options"]
    ]
    assert offered and max(offered) == timedelta(hours=1, minutes=30)

    # Past the end: access expires, and the credential DM and the warning are redrawn
    # without the credential and without any button.
    sweep_at(scene, end + timedelta(minutes=1))
    eventually(lambda: scene.request_state(request_id) is RequestState.EXPIRED)

    def ended() -> bool:
        return all(not buttons(m) for m in about(scene, REQUESTER, request_id))

    eventually(ended)
    now = {m.ts: m for m in about(scene, REQUESTER, request_id)}
    assert "vault unwrap" not in shown(now[credential.ts])
    assert "expired" in shown(now[credential.ts])
    assert len(now) == 2  # the credential and the warning: the end is told in the first
    assert slack.unmodelled_calls() == []
