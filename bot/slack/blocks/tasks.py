"""Direct messages about a request: an approver's task and reminder, the requester's expiry
warning, the requester's outcome, and the credential message once access ended.

A task and a reminder carry the request's context and its Approve / Deny buttons while the
approver still has to decide, and are redrawn without them once they have not (the notifier
keeps where each is). Mentions in a direct message notify nobody else: only the two people in
the conversation see it.
"""

from datetime import timedelta
from typing import Any

from bot.domain.access import AccessRequest, RequestState
from bot.domain.durations import format_duration
from bot.domain.rules import ResourceRule
from bot.slack import ids
from bot.slack.blocks import messages
from bot.slack.blocks.buttons import decision_buttons
from bot.slack.blocks.extension import extend_button
from bot.slack.blocks.text import context, escape, section, when
from bot.slack.text import mention

Message = tuple[str, list[dict[str, Any]]]


def approver_task(
    request: AccessRequest,
    rule: ResourceRule,
    approver: str,
    *,
    channel_id: str,
    timeout: timedelta | None,
    reminder: bool = False,
) -> Message:
    """An approver's task (or its one reminder): who asks for what, for how long, where and
    why, and the buttons while the approver still has to decide."""
    text = messages.task_reminder_text(request) if reminder else messages.task_text(request)
    heading = "⏰ *Still waiting on you*" if reminder else "🙋 *Waiting on you*"
    blocks: list[dict[str, Any]] = [
        section(
            f"{heading} · {request.id}\n*{mention(request.requester_id)}* asks for "
            f"*`{escape(rule.name)}`* for *{format_duration(request.duration)}* in "
            f"<#{channel_id}>\n_{escape(rule.description)}_"
        ),
        section(f"*Reason:* {escape(request.reason)}"),
    ]
    progress = f"Approvals: {len(request.approvers_so_far)} of {request.approvals_required}"
    if timeout is not None and request.state is RequestState.PENDING:
        progress += f" · times out {when(request.requested_at + timeout)}"
    blocks.append(context(progress))
    if request.state is RequestState.PENDING and request.decision_by(approver) is None:
        blocks.append(_buttons(request, rule, block=f"task:{request.id}"))
    else:
        blocks.append(section(messages.task_outcome(request, approver, timeout=timeout)))
    return text, blocks


def _buttons(request: AccessRequest, rule: ResourceRule, *, block: str) -> dict[str, Any]:
    confirm = None
    if rule.sensitive:
        confirm = (f"Grant {rule.name} to this requester?", f"Deny access to {rule.name}?")
    return decision_buttons(
        value=request.id,
        block_id=block,
        approve_action=ids.APPROVE,
        deny_action=ids.DENY,
        confirm=confirm,
        subject=f"{request.id} ({rule.name})",
    )


def expiry_warning(request: AccessRequest, room: timedelta | None, *, open_: bool) -> Message:
    """The requester's warning that access ends soon, with Extend while there is room
    (`room` None: break-glass, never extended). Redrawn without the button (`open_` False)
    once the access was extended or ended."""
    text = messages.expiry_warning_text(request)
    blocks: list[dict[str, Any]] = [section(text)]
    if not open_:
        if request.state is RequestState.ACTIVE:
            blocks.append(context(f"It now ends {when(request.ends_at)}."))
        else:
            blocks.append(context(messages.told_privately(request)))
        return text, blocks
    blocks.append(context(messages.expiry_warning_room(room)))
    if room is not None and room >= timedelta(minutes=1):
        blocks.append(extend_button(request.id, resource=request.resource))
    return text, blocks


def credential_ended(request: AccessRequest, *, timeout: timedelta | None) -> Message:
    """The credential DM once access ended: the credential and its buttons removed."""
    text = messages.credential_ended(request, timeout=timeout)
    return text, [
        section(f"🔑 Your `{escape(request.resource)}` credential · {request.id}"),
        section(text),
    ]


def requester_outcome(request: AccessRequest, *, timeout: timedelta | None) -> Message:
    """The requester's DM when their request is decided, times out or ends."""
    text = messages.told_privately(request, timeout=timeout)
    return text, [section(text)]
