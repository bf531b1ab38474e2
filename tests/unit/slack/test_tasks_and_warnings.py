"""Approvers get tasks, not pings; the requester is told privately; App Home does not go
stale (issue 15): on the fakes, with the clock moved."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.app import extending, lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState, Verdict
from bot.domain.rules import Notify
from bot.services import access
from bot.slack.blocks import access as access_blocks
from bot.slack.blocks import home
from bot.slack.blocks.buttons import ACCESSIBILITY_LABEL_LIMIT, accessibility_label
from tests.unit.slack.scene import Clock, approve, chat, filed, state


def dm_posts(deps: Deps, user: str) -> list[dict[str, object]]:
    return chat(deps).dms_to(user)


def dm_updates(deps: Deps, user: str) -> list[dict[str, object]]:
    return [
        args
        for method, args in chat(deps).calls
        if method == "chat.update" and args["channel"] == f"D{user}"
    ]


def shown(args: dict[str, object]) -> str:
    return json.dumps(args.get("blocks")) + str(args.get("text", ""))


def test_each_approver_gets_one_task_and_the_card_mentions_nobody(deps: Deps) -> None:
    channel, request_id = filed(deps)
    card = next(
        a for m, a in chat(deps).calls if m == "chat.postMessage" and a["channel"] == channel
    )
    assert "<@U0LEAD" not in shown(card)
    for lead in ("U0LEAD1", "U0LEAD2", "U0LEAD3"):
        (task,) = dm_posts(deps, lead)
        assert "gatehouse.approve" in shown(task) and "gatehouse.deny" in shown(task)
        assert "inference-logs-ro" in shown(task) and request_id in shown(task)
    deps.notify()
    assert len(dm_posts(deps, "U0LEAD1")) == 1  # never twice


def test_the_decision_updates_every_task_and_the_reminder_stops(deps: Deps, clock: Clock) -> None:
    _, request_id = filed(deps)
    approve(deps, request_id)
    for lead in ("U0LEAD1", "U0LEAD2", "U0LEAD3"):
        last = dm_updates(deps, lead)[-1]
        assert "gatehouse.approve" not in shown(last) and "Approved by <@U0LEAD1>" in shown(last)
    clock.now += timedelta(minutes=11)
    lifecycle.sweep(deps)
    assert not any("⏰" in str(a.get("text")) for _, a in chat(deps).calls)


def test_a_card_with_channel_mention_mentions_the_approvers(deps: Deps) -> None:
    _, request_id = filed(deps)
    request = access.get_request(uow=deps.uow, request_id=request_id)
    rule = replace(deps.policy.resource(request.resource), notify=Notify.CHANNEL_MENTION)
    _, blocks = access_blocks.approval_card(request, rule)
    assert "<@U0LEAD1>, <@U0LEAD2>, <@U0LEAD3>" in json.dumps(blocks)
    quiet = deps.policy.resource(request.resource)
    assert "<@U0LEAD" not in json.dumps(access_blocks.approval_card(request, quiet)[1])


def test_a_decided_card_collapses_who_can_approve(deps: Deps) -> None:
    _, request_id = filed(deps)
    approve(deps, request_id)
    request = access.get_request(uow=deps.uow, request_id=request_id)
    _, blocks = access_blocks.approval_card(request, deps.policy.resource(request.resource))
    assert "Can approve" not in json.dumps(blocks) and "<@U0LEAD1>" in json.dumps(blocks)


def test_the_warning_comes_once_before_the_end_with_only_the_headroom(
    deps: Deps, clock: Clock
) -> None:
    _, request_id = filed(deps, duration="30m")  # inference-logs-ro: max_ttl 4h
    approve(deps, request_id)
    clock.now += timedelta(minutes=19)
    lifecycle.sweep(deps)
    assert not [d for d in dm_posts(deps, "U0ONCALL2") if "ends" in str(d["text"])]
    clock.now += timedelta(minutes=2)
    lifecycle.sweep(deps)
    lifecycle.sweep(deps)
    (warning,) = [d for d in dm_posts(deps, "U0ONCALL2") if "⏳" in str(d["text"])]
    assert "gatehouse.extend" in shown(warning)
    assert "extended by at most 3h30m" in shown(warning)
    clock.now += timedelta(minutes=10)
    lifecycle.sweep(deps)
    assert state(deps, request_id) is RequestState.EXPIRED
    # the warning and the credential message lose their buttons (and the credential)
    after = dm_updates(deps, "U0ONCALL2")
    assert after and all("gatehouse.extend" not in shown(u) for u in after)
    assert all("vault unwrap" not in shown(u) for u in after)
    assert any("ended: it expired at" in shown(u) for u in after)


def test_no_warning_when_it_is_turned_off(deps: Deps, clock: Clock) -> None:
    off = replace(deps.policy, incident=replace(deps.policy.incident, expiry_warning=timedelta(0)))
    deps.policy = off
    _, request_id = filed(deps, duration="30m")
    approve(deps, request_id)
    clock.now += timedelta(minutes=25)
    assert lifecycle.sweep(deps) == 0


def test_a_time_out_reaches_the_requester_by_dm(deps: Deps, clock: Clock) -> None:
    filed(deps)
    clock.now += timedelta(minutes=31)
    lifecycle.sweep(deps)
    (told,) = [d for d in dm_posts(deps, "U0ONCALL2") if "timed out" in str(d["text"])]
    assert "nobody decided within 30m" in str(told["text"])


def test_the_deny_form_shows_what_is_denied(deps: Deps) -> None:
    _, request_id = filed(deps)
    request = access.get_request(uow=deps.uow, request_id=request_id)
    view = json.dumps(access_blocks.deny_reason_modal(request_id, request=request))
    assert "<@U0ONCALL2>" in view and "inference-logs-ro" in view and "30m" in view
    assert request.reason.split()[0] in view


def test_app_home_shows_absolute_times_extend_revoke_and_labels(deps: Deps, clock: Clock) -> None:
    _, first = filed(deps)
    _, second = filed(deps)
    workflows.decide(
        deps, request_id=second, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    mine = access.list_my_access(uow=deps.uow, user="U0ONCALL2")
    view = json.dumps(home.home_view(to_decide=[], active=mine.active, incidents=[], now=clock()))
    assert "<!date^" in view and " left" not in view
    assert "gatehouse.extend" in view and "gatehouse.revoke" in view
    waiting = access.list_my_access(uow=deps.uow, user="U0LEAD2").to_decide
    assert [r.id for r in waiting] == [first]
    lead_view = home.home_view(to_decide=waiting, active=[], incidents=[], now=clock())
    buttons = [
        element
        for block in lead_view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert buttons and all(first in b["accessibility_label"] for b in buttons)


@pytest.mark.parametrize("subject", ["R-7K3QF2AB (x)", "R-7K3QF2AB (" + "y" * 200 + ")"])
def test_accessibility_labels_keep_to_slacks_limit(subject: str) -> None:
    # Slack: a button's accessibility_label is at most 75 characters
    # (https://docs.slack.dev/reference/block-kit/block-elements/button-element).
    label = accessibility_label("Approve", subject)
    assert len(label) <= ACCESSIBILITY_LABEL_LIMIT == 75 and label.startswith("Approve R-7K3QF2AB")


def test_an_extension_is_a_task_for_each_approver_and_told_once_to_its_requester(
    deps: Deps,
) -> None:
    channel, request_id = filed(deps)
    approve(deps, request_id)
    extending.ask(deps, request_id=request_id, user="U0ONCALL2", duration="30m", reason="more")
    for lead in ("U0LEAD1", "U0LEAD2", "U0LEAD3"):
        (task,) = [d for d in dm_posts(deps, lead) if "asks to extend" in str(d["text"])]
        assert "gatehouse.extend_approve" in shown(task) and "more" in shown(task)
    (note,) = [
        a["text"]
        for m, a in chat(deps).calls
        if m == "chat.postMessage" and a["channel"] == channel and "asks to extend" in a["text"]
    ]
    assert "<@" not in str(note)  # each approver has it as a task: nobody pinged
    extending.decide(
        deps, request_id=request_id, approver="U0LEAD2", verdict=Verdict.DENY, reason="wrap up"
    )
    for lead in ("U0LEAD1", "U0LEAD2", "U0LEAD3"):
        last = [u for u in dm_updates(deps, lead) if "asks to extend" in str(u["text"])][-1]
        assert "gatehouse.extend_approve" not in shown(last) and "wrap up" in shown(last)
    told = [d for d in dm_posts(deps, "U0ONCALL2") if "denied extending" in str(d["text"])]
    assert len(told) == 1 and "wrap up" in shown(told[0])
    thread = [
        a["text"]
        for m, a in chat(deps).calls
        if m == "chat.postMessage" and a.get("thread_ts") and "denied extending" in a["text"]
    ]
    assert len(thread) == 1 and "<@U0ONCALL2>" not in str(thread[0])
