"""The App Home tab: what waits on me, my access, open incidents."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.domain.access import AccessRequest
from bot.domain.durations import format_duration
from bot.domain.incident import Incident
from bot.slack import ids
from bot.slack.blocks.text import context, escape, header, mention, section, when

MAX_LISTED = 20  # a home view holds at most 100 blocks


def home_view(
    *,
    to_decide: Sequence[AccessRequest],
    active: Sequence[AccessRequest],
    incidents: Sequence[Incident],
    now: datetime,
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [header("Waiting for your decision")]
    if not to_decide:
        blocks.append(context("Nothing waits on you."))
    for request in to_decide[:MAX_LISTED]:
        blocks.append(
            section(
                f"*{request.id}* · {mention(request.requester_id)} requests `{request.resource}` "
                f"for {format_duration(request.duration)}: _{escape(request.reason)}_"
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"home:{request.id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ids.APPROVE,
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": request.id,
                    },
                    {
                        "type": "button",
                        "action_id": ids.DENY,
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Deny"},
                        "value": request.id,
                    },
                ],
            }
        )
    blocks.append(header("Your access"))
    if not active:
        blocks.append(context("No active access."))
    for request in active[:MAX_LISTED]:
        left = format_duration(request.time_left(now))
        blocks.append(
            section(
                f"🔓 *{request.id}* `{request.resource}` — {left} left, "
                f"until {when(request.ends_at)}"
            )
        )
    blocks.append(header("Open incidents"))
    if not incidents:
        blocks.append(context("No open incidents."))
    for incident in incidents[:MAX_LISTED]:
        blocks.append(
            section(
                f"<#{incident.channel_id}> · *{incident.id}* {escape(incident.title)} · "
                f"{incident.severity.value.upper()} · commander {mention(incident.commander_id)}"
            )
        )
    return {"type": "home", "blocks": blocks}
