"""Extend and break-glass over HTTP with real signatures, against the Slack and Vault emulators."""

import json
import re
import time
from typing import Any

from bot.domain.access import RequestState
from bot.domain.extension import ExtensionState
from tests.integration import test_slack_end_to_end as end_to_end
from tests.integration.test_slack_end_to_end import Scene, request_id_in
from tests.waiting import eventually

scene = end_to_end.scene  # the same fixture: bot, Slack and Vault emulators, both databases


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

    asked = eventually(asked_in_thread)
    assert "<@U0LEAD1>" in asked.text and "<@U0LEAD2>" in asked.text
    updated = slack.channel(channel.id).find(card.ts)
    assert updated is not None and "gatehouse.extend_approve" in json.dumps(updated.blocks)

    scene.click("U0ONCALL2", "gatehouse.extend_approve", channel.id, card.ts, request_id)
    scene.click("U0LEAD2", "gatehouse.extend_approve", channel.id, card.ts, request_id)

    def extended_in_thread() -> Any:
        return next(
            (m for m in slack.thread(channel.id, card.ts) if "extended until" in m.text), None
        )

    eventually(extended_in_thread)
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
    assert "<!here>" in blocks and "<@U0LEAD1>" in card.text and "15m" in card.text
    eventually(lambda: any("vault unwrap" in json.dumps(m.blocks) for m in slack.dms("U0ONCALL2")))
    assert scene.request_state(request_id) is RequestState.ACTIVE
    delivered = [m for m in slack.dms("U0ONCALL2") if "vault unwrap" in json.dumps(m.blocks)]
    assert "gatehouse.extend" not in json.dumps(delivered[0].blocks)
    assert eventually(lambda: grant_token_expiry(scene, request_id)) <= time.time() + 15 * 60 + 5

    scene.click("U0LEAD1", "gatehouse.deny", channel.id, card.ts, request_id)
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
