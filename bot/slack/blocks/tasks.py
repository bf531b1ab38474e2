"""Direct messages about a request: an approver's task and reminder, a reviewer's break-glass
review, an approver's extension task, the requester's expiry warning and outcomes, and the
credential message once access ended.

A task, a reminder and a review carry the request's context and their buttons while the
approver still has to decide, and are redrawn without them, saying who decided, once they
have not (the notifier keeps where each is). Mentions in a direct message notify nobody else:
only the two people in the conversation see it.
"""

from datetime import timedelta
from typing import Any

from bot.domain.access import AccessRequest, RequestState
from bot.domain.durations import format_duration
from bot.domain.extension import Extension, ExtensionState
from bot.domain.rules import ResourceRule
from bot.slack.blocks import messages
from bot.slack.blocks.access import approval_buttons, review_buttons
from bot.slack.blocks.extension import extend_button, extension_buttons
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
    waiting = request.state is RequestState.PENDING and request.decision_by(approver) is None
    if reminder and not waiting:
        # The task above it says it all, redrawn the same way: one line, not a second copy.
        outcome = messages.task_outcome(request, approver, timeout=timeout)
        return text, [context(f"⏰ Reminder about {request.id}, decided since: {outcome}")]
    if not waiting:
        heading = "*Access request*"  # decided: nothing waits on this approver any more
    else:
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
    if waiting:
        blocks.append(approval_buttons(request, rule, block=f"task:{request.id}"))
    else:
        blocks.append(section(messages.task_outcome(request, approver, timeout=timeout)))
    return text, blocks


def review_task(
    request: AccessRequest, rule: ResourceRule, reviewer: str, *, channel_id: str
) -> Message:
    """A reviewer's break-glass review: who took what, for how long, where and why, when the
    access ends (the review's deadline), and Confirm / Deny and revoke while it waits on them."""
    text = messages.review_text(request)
    waiting = request.awaiting_review and request.decision_by(reviewer) is None
    heading = "🚨 *Review break-glass*" if waiting else "*Break-glass review*"
    blocks: list[dict[str, Any]] = [
        section(
            f"{heading} · {request.id}\n*{mention(request.requester_id)}* took "
            f"*`{escape(rule.name)}`* for *{format_duration(request.duration)}* in "
            f"<#{channel_id}> without approval\n_{escape(rule.description)}_"
        ),
        section(f"*Reason:* {escape(request.reason)}"),
    ]
    needed = request.approvals_required
    progress = f"Confirmations: {len(request.approvers_so_far)} of {needed}"
    if request.awaiting_review and request.ends_at is not None:
        progress += f" · access ends {when(request.ends_at)}; one deny revokes it at once"
    blocks.append(context(progress))
    if waiting:
        blocks.append(review_buttons(request, rule, block=f"review-task:{request.id}"))
    else:
        voice = messages.about_requester(request)
        blocks.append(section(messages.review_outcome(request, voice)))
    return text, blocks


def extension_task(
    request: AccessRequest,
    extension: Extension,
    rule: ResourceRule,
    approver: str,
    *,
    channel_id: str,
) -> Message:
    """An approver's extension task: who asks for how much more of what, why, when access
    ends now and would end, and the buttons while it waits on them."""
    text = messages.extension_task_text(request, extension)
    reason = escape(extension.reason) if extension.reason else "no reason given"
    heading = "🙋 *Waiting on you*" if extension.awaits(approver) else "*Extension*"
    blocks: list[dict[str, Any]] = [
        section(
            f"{heading} · extension of {request.id}\n"
            f"*{mention(extension.requested_by)}* asks to extend *`{escape(rule.name)}`* by "
            f"*{format_duration(extension.duration)}* in <#{channel_id}>\n"
            f"_{escape(rule.description)}_"
        ),
        section(f"*Reason:* {reason}"),
    ]
    progress = f"Approvals: {len(extension.approvers_so_far)} of {extension.approvals_required}"
    if extension.state is ExtensionState.PENDING and request.ends_at is not None:
        progress = (
            f"Ends {when(request.ends_at)}; extended, "
            f"{when(request.ends_at + extension.duration)} · {progress}"
        )
    blocks.append(context(progress))
    if extension.awaits(approver):
        blocks.append(extension_buttons(request, block=f"extension-task:{extension.id}"))
    else:
        blocks.append(section(messages.extension_task_outcome(request, extension, approver)))
    return text, blocks


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
            # Past: struck through, not told again (the credential message says how it ended).
            blocks = [section(f"~{text}~"), context("Access has ended since.")]
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


def requester_extension_outcome(request: AccessRequest, extension: Extension) -> Message:
    """The requester's DM when their extension is applied, denied or refused by Vault."""
    line = messages.extension_outcome(request, extension, messages.to_requester(request))
    text = f"{line} ({request.id})"
    return text, [section(text)]


def requester_review_outcome(request: AccessRequest) -> Message:
    """The requester's DM when their break-glass access was confirmed on review (a deny
    ends the access, which is told as every end is)."""
    line = messages.review_outcome(request, messages.to_requester(request))
    text = f"{line} ({request.id})"
    return text, [section(text)]
