"""Extension messages: the Extend button and form, the prompt on the card, the outcomes."""

from datetime import timedelta
from typing import Any

from bot.domain.access import AccessRequest
from bot.domain.durations import format_duration, parse_duration
from bot.domain.extension import Extension, ExtensionState
from bot.slack import ids
from bot.slack.blocks.buttons import accessibility_label, decision_buttons
from bot.slack.blocks.text import context, escape, mentions, option, section, when
from bot.slack.text import mention

EXTEND_CHOICES = ("15m", "30m", "1h", "2h")


def extend_button(request_id: str, *, resource: str | None = None) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": f"extend:{request_id}",
        "elements": [extend_element(request_id, resource=resource)],
    }


def extend_element(request_id: str, *, resource: str | None = None) -> dict[str, Any]:
    """The Extend button: it opens the form, which offers only what `max_ttl` still allows."""
    subject = f"{request_id} ({resource})" if resource else request_id
    return {
        "type": "button",
        "action_id": ids.EXTEND,
        "text": {"type": "plain_text", "text": "Extend"},
        "value": request_id,
        "accessibility_label": accessibility_label("Extend", subject),
    }


def extension_blocks(request: AccessRequest, *, mention_approvers: bool) -> list[dict[str, Any]]:
    """What the request card shows about extensions: the open one with its buttons, and
    how often access was extended. Who may approve is named only where the policy asks
    (`notify: channel-mention`): each has the extension as a task of their own."""
    blocks: list[dict[str, Any]] = []
    applied = [e for e in request.extensions if e.state is ExtensionState.APPLIED]
    if applied:
        last = applied[-1]
        blocks.append(
            context(
                f"Extended {len(applied)}× — last by {format_duration(last.duration)} "
                f"(approved by {mentions(last.approvers_so_far)}), now until "
                f"{when(last.new_ends_at)}"
            )
        )
    extension = request.open_extension
    if extension is None:
        return blocks
    blocks.append(section(_asked(request, extension, mention_approvers=mention_approvers)))
    if extension.state is ExtensionState.PENDING:
        blocks.append(extension_buttons(request, block=f"extension:{extension.id}"))
    else:
        blocks.append(context("✅ Extension approved — renewing the credential in Vault…"))
    return blocks


def extension_buttons(request: AccessRequest, *, block: str) -> dict[str, Any]:
    """Approve extension / Deny extension, on the card and in each approver's task. They carry
    the request: it has one open extension at a time."""
    return decision_buttons(
        value=request.id,
        block_id=block,
        approve_action=ids.EXTEND_APPROVE,
        deny_action=ids.EXTEND_DENY,
        approve_label="Approve extension",
        deny_label="Deny extension",
        subject=f"{request.id} ({request.resource})",
    )


def _asked(request: AccessRequest, extension: Extension, *, mention_approvers: bool) -> str:
    because = f": _{escape(extension.reason)}_" if extension.reason else ""
    progress = f"{len(extension.approvers_so_far)} of {extension.approvals_required}"
    if mention_approvers:
        who = mentions(extension.possible_approvers)
    else:
        count = len(extension.possible_approvers)
        who = f"{count} {'person' if count == 1 else 'people'}, each asked privately"
    return (
        f"⏳ *{mention(extension.requested_by)} asks to extend by "
        f"{format_duration(extension.duration)}*{because}\n"
        f"*Approvals:* {progress} · *Can approve:* {who} · currently ends {when(request.ends_at)}"
    )


def extend_modal(request: AccessRequest, headroom: timedelta, channel: str) -> dict[str, Any]:
    """The form behind the Extend button: how much longer (no more than allowed), and why."""
    whole_minutes = timedelta(minutes=int(headroom.total_seconds() // 60))
    choices = [c for c in EXTEND_CHOICES if parse_duration(c) <= whole_minutes]
    most = format_duration(whole_minutes)
    if most not in choices:
        choices.append(most)
    return {
        "type": "modal",
        "callback_id": ids.EXTEND_VIEW,
        "private_metadata": f"{request.id}|{channel}",
        "title": {"type": "plain_text", "text": "Extend access"},
        "submit": {"type": "plain_text", "text": "Ask"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
                f"`{escape(request.resource)}` · {request.id} ends {when(request.ends_at)}. "
                f"It can be extended by at most {most}; an approver decides."
            ),
            {
                "type": "input",
                "block_id": ids.EXTEND_DURATION_BLOCK,
                "label": {"type": "plain_text", "text": "Extend by"},
                "element": {
                    "type": "static_select",
                    "action_id": ids.EXTEND_DURATION_INPUT,
                    "options": [option(c, c) for c in choices],
                },
            },
            {
                "type": "input",
                "block_id": ids.EXTEND_REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why"},
                "optional": True,
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.EXTEND_REASON_INPUT,
                    "max_length": 500,
                },
            },
        ],
    }
