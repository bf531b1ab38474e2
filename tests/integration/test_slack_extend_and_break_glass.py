"""Extend and break-glass over HTTP with real signatures, against the Slack and Vault emulators."""

import json
import re
import time
from functools import partial
from typing import Any

from bot.domain.access import RequestState
from bot.domain.extension import ExtensionState
from tests.integration import test_slack_end_to_end as end_to_end
from tests.integration.test_slack_end_to_end import Scene, request_id_in
from tests.waiting import eventually

scene = end_to_end.scene  # the same fixture: bot, Slack and Vault emulators, both databases
LEADS = ("U0LEAD1", "U0LEAD2", "U0LEAD3")  # inference-logs-ro's and serving-cluster-exec's


def shown_text(message: Any) -> str:
    return str(message.text) + json.dumps(message.blocks or [], ensure_ascii=False)


def grant_token_expiry(scene: Scene, request_id: str) -> float | None:
    """When Vault will expire the request's grant token (None: Vault no longer knows it)."""
    with scene.bot.gatehouse.uow() as tx:
        grant = tx.grants.get_for_request(request_id)
    assert grant is not None and grant.token_accessor is not None
    token = scene.vault.emulator.core.tokens.find_by_accessor(grant.token_accessor)
    return None if token is None else token.expire_time


def open_incident(scene: Scene, *members: str) -> Any:
    scene.command("/incident", "open Ranker drift sev2", "U0ONCALL1", scene.general)
    channel = scene.incident_channel()
    channel.members.extend(members)
    return channel


def test_extend_from_the_button_with_an_approval_renews_the_same_credential(
    scene: Scene,
) -> None:
    slack = scene.slack
    channel = open_incident(scene, "U0ONCALL2", "U0LEAD1", "U0LEAD2")
    scene.command("/request-access", "inference-logs-ro 1h drift graphs", "U0ONCALL2", channel.id)
    card = scene.card(channel.id)
    request_id = request_id_in(card)
    scene.click("U0LEAD1", "gatehouse.approve", channel.id, card.ts, request_id)

    def extend_button_in_dm() -> Any:
        return next(
            (m for m in slack.dms("U0ONCALL2") if "gatehouse.extend" in json.dumps(m.blocks)),
            None,
        )

    dm = eventually(extend_button_in_dm)
    expiry_before = eventually(lambda: grant_token_expiry(scene, request_id))
    dm_channel = slack.dm_channel("U0ONCALL2")
    assert dm_channel is not None

    scene.click("U0LEAD1", "gatehouse.extend", channel.id, card.ts, request_id)  # not theirs
    scene.click("U0ONCALL2", "gatehouse.extend", dm_channel.id, dm.ts, request_id)
    form = eventually(lambda: [v for v in slack.views("U0ONCALL2") if not v.closed])[-1]
    offered = json.dumps(form.body)
    assert "Extend by" in offered and '"value": "2h"' in offered  # at most 4h from first issue
    scene.people.view_submission(
        "U0ONCALL2",
        "gatehouse.extend_form",
        {
            "extend_duration": {
                "duration": {"type": "static_select", "selected_option": {"value": "30m"}}
            },
            "extend_reason": {"reason": {"type": "plain_text_input", "value": "still drifting"}},
        },
    )

    def asked_in_thread() -> Any:
        return next(
            (m for m in slack.thread(channel.id, card.ts) if "asks to extend" in m.text), None
        )

    # The thread mentions nobody: each approver who may decide has the ask as a task DM,
    # with the request's context and the buttons.
    asked = eventually(asked_in_thread)
    assert "<@" not in asked.text and "asked privately" in asked.text
    updated = slack.channel(channel.id).find(card.ts)
    assert updated is not None and "gatehouse.extend_approve" in json.dumps(updated.blocks)

    def extension_task(user: str) -> Any:
        return next(
            (m for m in slack.dms(user) if "asks to extend" in m.text and request_id in m.text),
            None,
        )

    tasks = {lead: eventually(partial(extension_task, lead)) for lead in LEADS}
    for task in tasks.values():
        shown = json.dumps(task.blocks, ensure_ascii=False)
        assert "gatehouse.extend_approve" in shown and "still drifting" in shown
        assert "inference-logs-ro" in shown and "30m" in shown and "Ends" in shown
    assert extension_task("U0ONCALL2") is None  # never asked to decide their own

    scene.click("U0ONCALL2", "gatehouse.extend_approve", channel.id, card.ts, request_id)
    lead2 = slack.dm_channel("U0LEAD2")
    assert lead2 is not None
    scene.click("U0LEAD2", "gatehouse.extend_approve", lead2.id, tasks["U0LEAD2"].ts, request_id)

    def extended_in_thread() -> Any:
        return next(
            (m for m in slack.thread(channel.id, card.ts) if "extended until" in m.text), None
        )

    extended = eventually(extended_in_thread)
    assert "<@U0ONCALL2>" not in extended.text  # told by DM, not pinged in the thread
    told = eventually(
        lambda: next((m for m in slack.dms("U0ONCALL2") if "is extended until" in m.text), None)
    )
    assert told.text.startswith("⏱️ Your access to `inference-logs-ro` is extended until")

    def redrawn() -> bool:
        return all(
            "gatehouse.extend_approve" not in json.dumps(m.blocks)
            for lead in LEADS
            for m in slack.dms(lead)
            if "asks to extend" in m.text
        )

    eventually(redrawn)
    for lead in LEADS:
        (task,) = [m for m in slack.dms(lead) if "asks to extend" in m.text]
        assert "extended until" in json.dumps(task.blocks) and "<@U0LEAD2>" in json.dumps(
            task.blocks
        )
    expiry_after = grant_token_expiry(scene, request_id)
    assert expiry_after is not None and expiry_after - expiry_before >= 30 * 60 - 5
    with scene.bot.gatehouse.uow() as tx:
        request = tx.requests.get(request_id)
        grants = tx.grants.list_for_request(request_id)
    assert request is not None and request.extensions[0].state is ExtensionState.APPLIED
    assert len(grants) == 1  # the same credential, renewed; never a second one
    refusals = " ".join(e.text for e in slack.ephemerals("U0ONCALL2", channel.id))
    assert "your own access" in refusals
    refused_lead = [e.text for e in slack.ephemerals("U0LEAD1")] + [
        m.text for m in slack.dms("U0LEAD1")
    ]
    assert any("Only <@U0ONCALL2> can extend" in text for text in refused_lead)
    card_now = slack.channel(channel.id).find(card.ts)
    assert card_now is not None and "Extended 1×" in json.dumps(card_now.blocks, ensure_ascii=False)

    scene.command("/access", f"extend {request_id} 9h", "U0ONCALL2", channel.id)
    ack = scene.people.slash_command(
        "/access", f"extend {request_id} soon", user_id="U0ONCALL2", channel_id=channel.id
    )
    assert "is not a duration" in ack.text


def test_break_glass_is_loud_issues_at_once_and_a_deny_revokes_it(scene: Scene) -> None:
    slack = scene.slack
    channel = open_incident(scene, "U0ONCALL2", "U0LEAD1")
    refused = scene.command(
        "/request-access",
        "inference-logs-ro 10m need it now --break-glass",
        "U0ONCALL2",
        channel.id,
    )
    assert "has no break-glass" in refused.text
    scene.command(
        "/request-access",
        "serving-cluster-exec 1h pods crash-looping, nobody answers —break-glass",
        "U0ONCALL2",
        channel.id,
    )
    card = scene.card(channel.id, "Deny and revoke")
    request_id = request_id_in(card)
    blocks = json.dumps(card.blocks)
    assert "<!here>" in blocks and "15m" in card.text and "asked privately" in card.text
    assert "<@U0LEAD1>" not in card.text + blocks  # a task of their own, not a ping
    # Each reviewer (the leads and the commander) has the review as a task DM.
    reviewers = (*LEADS, "U0ONCALL1")

    def review(user: str) -> Any:
        return next((m for m in slack.dms(user) if "by break-glass" in m.text), None)

    reviews = {user: eventually(partial(review, user)) for user in reviewers}
    for task in reviews.values():
        shown = json.dumps(task.blocks, ensure_ascii=False)
        assert "Confirm it was needed" in shown and "Deny and revoke" in shown
        assert "serving-cluster-exec" in shown and "pods crash-looping" in shown
    assert review("U0ONCALL2") is None
    eventually(lambda: any("vault unwrap" in json.dumps(m.blocks) for m in slack.dms("U0ONCALL2")))
    assert scene.request_state(request_id) is RequestState.ACTIVE
    delivered = [m for m in slack.dms("U0ONCALL2") if "vault unwrap" in json.dumps(m.blocks)]
    assert "gatehouse.extend" not in json.dumps(delivered[0].blocks)
    assert eventually(lambda: grant_token_expiry(scene, request_id)) <= time.time() + 15 * 60 + 5

    lead1 = slack.dm_channel("U0LEAD1")
    assert lead1 is not None
    scene.click("U0LEAD1", "gatehouse.deny", lead1.id, reviews["U0LEAD1"].ts, request_id)
    eventually(lambda: [v for v in slack.views("U0LEAD1") if not v.closed])
    scene.people.view_submission(
        "U0LEAD1",
        "gatehouse.deny_reason",
        {"deny_reason": {"reason": {"type": "plain_text_input", "value": "page me next time"}}},
    )
    eventually(lambda: scene.request_state(request_id) is RequestState.REVOKED)
    eventually(lambda: grant_token_expiry(scene, request_id) is None)

    def revoked_card() -> bool:
        updated = slack.channel(channel.id).find(card.ts)
        text = json.dumps(updated.blocks if updated else [])
        return "page me next time" in text and "Deny and revoke" not in text

    eventually(revoked_card)

    def reviews_redrawn() -> bool:
        now = [review(user) for user in reviewers]
        return all(
            m is not None
            and "Deny and revoke" not in json.dumps(m.blocks)
            and "page me next time" in json.dumps(m.blocks)
            for m in now
        )

    eventually(reviews_redrawn)
    told = [m for m in slack.dms("U0ONCALL2") if "denied it on review" in shown_text(m)]
    assert len(told) == 1  # the credential DM, redrawn: the end said once, privately
    thread = [m.text for m in slack.thread(channel.id, card.ts)]
    assert any("denied it on review" in t for t in thread)
    assert not any("<@U0ONCALL2>" in t for t in thread)
    scene.command("/incident", "close pods back", "U0ONCALL1", channel.id)
    summary = eventually(
        lambda: next((m for m in slack.messages(channel.id) if "audit summary" in m.text), None)
    )
    text = json.dumps(summary.blocks)
    assert "break-glass" in text and "Unreviewed break-glass" not in text
    assert re.search(r"R-[A-Z2-7]{8}", text)


def test_break_glass_from_the_form_is_refused_where_the_policy_has_none(scene: Scene) -> None:
    slack = scene.slack
    channel = open_incident(scene, "U0ONCALL2", "U0LEAD1")
    scene.command("/request-access", "", "U0ONCALL2", channel.id)
    form = eventually(lambda: [v for v in slack.views("U0ONCALL2") if not v.closed])[-1]
    assert "Use it now, review after" in json.dumps(form.body)

    def submit(resource: str) -> Any:
        return scene.people.view_submission(
            "U0ONCALL2",
            "gatehouse.request_access",
            {
                "resource": {
                    "resource": {"type": "static_select", "selected_option": {"value": resource}}
                },
                "reason": {"reason": {"type": "plain_text_input", "value": "pods down"}},
                "break_glass": {
                    "break_glass": {
                        "type": "checkboxes",
                        "selected_options": [{"value": "break_glass"}],
                    }
                },
            },
        )

    refused = submit("inference-logs-ro").json()
    assert refused["response_action"] == "errors"
    assert "has no break-glass" in refused["errors"]["break_glass"]
    submit("serving-cluster-exec")
    card = scene.card(channel.id, "Deny and revoke")
    eventually(lambda: scene.request_state(request_id_in(card)) is RequestState.ACTIVE)
