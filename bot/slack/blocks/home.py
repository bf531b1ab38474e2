"""The App Home tab: what waits on me, my access, open incidents."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.domain.access import AccessRequest, RequestState
from bot.domain.durations import format_duration
from bot.domain.incident import Incident
from bot.slack import ids
from bot.slack.blocks import messages
from bot.slack.blocks.buttons import accessibility_label, decision_buttons
from bot.slack.blocks.extension import extend_element, extension_buttons
from bot.slack.blocks.text import clip, context, escape, header, section, when
from bot.slack.text import mention

MAX_LISTED = 20  # a home view holds at most 100 blocks


def home_view(
    *,
    to_decide: Sequence[AccessRequest],
    active: Sequence[AccessRequest],
    incidents: Sequence[Incident],
    now: datetime,
) -> dict[str, Any]:
    del now  # every time is absolute (Slack shows it in the reader's zone): never stale
    blocks: list[dict[str, Any]] = [header("Waiting on you")]
    if not to_decide:
        blocks.append(context("Nothing waits on you."))
    for request in to_decide[:MAX_LISTED]:
        blocks += _waiting_item(request)
    blocks.append(header("Your access"))
    if not active:
        blocks.append(context("No active access."))
    for request in active[:MAX_LISTED]:
        blocks.append(
            section(
                f"🔓 *{request.id}* `{escape(request.resource)}` — ends {when(request.ends_at)}"
            )
        )
        blocks.append(_access_buttons(request))
    blocks.append(header("Open incidents"))
    if not incidents:
        blocks.append(context("No open incidents."))
    for incident in incidents[:MAX_LISTED]:
        blocks.append(
            section(
                f"{_channel_of(incident)} · *{incident.id}* {escape(incident.title)} · "
                f"{incident.severity.value.upper()} · commander {mention(incident.commander_id)}"
            )
        )
    return {"type": "home", "blocks": blocks}


def _access_buttons(request: AccessRequest) -> dict[str, Any]:
    """Extend (not for break-glass, which is never extended) and Revoke, on one's own access."""
    subject = f"{request.id} ({request.resource})"
    revoke: dict[str, Any] = {
        "type": "button",
        "action_id": ids.REVOKE,
        "style": "danger",
        "text": {"type": "plain_text", "text": "Revoke"},
        "value": request.id,
        "accessibility_label": accessibility_label("Revoke", subject),
        "confirm": {
            "title": {"type": "plain_text", "text": "Are you sure?"},
            "text": {
                "type": "plain_text",
                "text": clip(f"End your access to {request.resource} now?", 300),
            },
            "confirm": {"type": "plain_text", "text": "Revoke"},
            "deny": {"type": "plain_text", "text": "Back"},
        },
    }
    elements = (
        [] if request.break_glass else [extend_element(request.id, resource=request.resource)]
    )
    return {
        "type": "actions",
        "block_id": f"home-access:{request.id}",
        "elements": [*elements, revoke],
    }


def _channel_of(incident: Incident) -> str:
    return f"<#{incident.channel_id}>" if incident.has_channel else "(channel being made)"


def _waiting_item(request: AccessRequest) -> list[dict[str, Any]]:
    """One thing to decide: a request, a break-glass review, or an extension."""
    who, what = mention(request.requester_id), f"`{escape(request.resource)}`"
    extension = request.open_extension
    if request.state is RequestState.ACTIVE and extension is not None:
        text = (
            f"*{request.id}* · {who} asks to extend {what} by "
            f"{format_duration(extension.duration)} (ends {when(request.ends_at)})"
        )
        buttons = extension_buttons(request, block=f"home-extension:{extension.id}")
        return [section(text), buttons]
    if request.break_glass:
        text = (
            f"🚨 *{request.id}* · {messages.took(request)}: _{escape(request.reason)}_ — review it"
        )
        labels = ("Confirm it was needed", "Deny and revoke")
    else:
        text = f"*{request.id}* · {messages.ask(request)}: _{escape(request.reason)}_"
        labels = ("Approve", "Deny")
    buttons = decision_buttons(
        value=request.id,
        block_id=f"home:{request.id}",
        approve_action=ids.APPROVE,
        deny_action=ids.DENY,
        approve_label=labels[0],
        deny_label=labels[1],
        subject=f"{request.id} ({request.resource})",
    )
    return [section(text), buttons]
