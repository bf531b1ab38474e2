"""Access messages: the approval card, outcomes, private delivery, the request and deny forms."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.domain.access import AccessRequest, RequestState
from bot.domain.durations import format_duration, parse_duration
from bot.domain.ports import IssuedCredential
from bot.domain.rules import INCIDENT_COMMANDER, ResourceRule
from bot.domain.wording import Wording
from bot.slack import ids
from bot.slack.blocks import messages
from bot.slack.blocks.buttons import decision_buttons
from bot.slack.blocks.extension import extend_button, extension_blocks
from bot.slack.blocks.text import (
    LIST_LIMIT,
    MESSAGE_TEXT_LIMIT,
    clip,
    clip_list,
    context,
    escape,
    header,
    mentions,
    option,
    section,
    when,
)
from bot.slack.text import mention

REQUEST_USAGE = (
    "Usage: `/request-access <resource> [duration] <reason> [--break-glass]` in an incident "
    "channel, e.g. `/request-access inference-logs-ro 2h checking p99 spikes`. Without "
    "arguments: a form. `--break-glass` (where the policy allows it) issues at once, for a "
    "short time, and the approvers review it afterwards."
)
DURATION_CHOICES = ("15m", "30m", "1h", "2h", "4h")


def approval_card(
    request: AccessRequest,
    rule: ResourceRule,
    *,
    retrying: bool = False,
    timeout: timedelta | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The one message per request, updated in place; buttons only while a decision is due.
    `timeout` is how long requests wait for a decision (said when one timed out)."""
    text = messages.card_text(
        request, retrying=retrying, timeout=timeout, mention_approvers=rule.mentions_approvers
    )
    if request.break_glass:
        return text, _break_glass_blocks(request, rule, retrying=retrying, timeout=timeout)
    progress = _progress(request)
    if request.auto_approved_because:
        progress = f"🤖 *Auto-approved:* {escape(request.auto_approved_because)}"
        progress += f"\n*Approvers (told; may revoke):* {_approvers(request)}"
    elif request.state is RequestState.PENDING:
        # Once decided, the list collapses: the progress and the status say who decided.
        who = _approvers(request) if rule.mentions_approvers else _quietly(request, rule)
        progress += f"\n*Can approve:* {who}"
    blocks: list[dict[str, Any]] = [
        section(
            f"*{mention(request.requester_id)}* requests *{_what(rule)}* for "
            f"*{format_duration(request.duration)}* · {request.id}\n"
            f"_{escape(rule.description)}_"
        ),
        section(f"*Reason:* {escape(request.reason)}"),
        section(progress),
    ]
    if request.state is RequestState.PENDING:
        blocks.append(approval_buttons(request, rule, block=f"decide:{request.id}"))
    else:
        voice = messages.about_requester(request)
        blocks.append(
            section(messages.status_line(request, voice, retrying=retrying, timeout=timeout))
        )
    blocks += extension_blocks(request, mention_approvers=rule.mentions_approvers)
    return text, blocks


def _break_glass_blocks(
    request: AccessRequest, rule: ResourceRule, *, retrying: bool, timeout: timedelta | None
) -> list[dict[str, Any]]:
    """Loud on purpose (`@here`): access was taken before anyone approved it. Its reviewers
    are named only where the policy asks; each has the review as a task of their own."""
    reviewers = _approvers(request) if rule.mentions_approvers else _quietly(request, rule)
    blocks: list[dict[str, Any]] = [
        header(f"🚨 Break-glass: {rule.name}"),
        section(
            f"<!here> *{mention(request.requester_id)}* took *{_what(rule)}* for "
            f"*{format_duration(request.duration)}* *without approval* · {request.id}\n"
            f"_{escape(rule.description)}_"
        ),
        section(f"*Reason:* {escape(request.reason)}"),
    ]
    if request.awaiting_review:
        # Once reviewed or ended, the list collapses: the progress and the status say who.
        blocks.append(
            section(
                f"*Review after the fact:* {reviewers} — {_confirmations(request)} needed "
                "before access ends; one deny revokes it at once.\n" + _progress(request)
            )
        )
    else:
        blocks.append(section(_progress(request)))
    if request.awaiting_review:
        blocks.append(review_buttons(request, rule, block=f"review:{request.id}"))
    elif request.reviewed_at is not None:
        blocks.append(section(f"✅ Reviewed {when(request.reviewed_at)}"))
    voice = messages.about_requester(request)
    blocks.append(section(messages.status_line(request, voice, retrying=retrying, timeout=timeout)))
    return blocks


def _confirmations(request: AccessRequest) -> str:
    count = request.approvals_required
    return f"{count} confirmation{'s' if count != 1 else ''}"


def _what(rule: ResourceRule) -> str:
    return f"`{escape(rule.name)}`"


def _progress(request: AccessRequest) -> str:
    approvers = request.approvers_so_far
    label = "Confirmations" if request.break_glass else "Approvals"
    progress = f"*{label}:* {len(approvers)} of {request.approvals_required}"
    if approvers:
        progress += f" — {mentions(approvers)}"
    return progress


def _approvers(request: AccessRequest) -> str:
    """Who may decide: named groups by label (`@ml-leads (<@U1>, <@U2>)`), then the rest."""
    named = set().union(*request.approver_labels.values()) if request.approver_labels else set()
    rest = request.possible_approvers - named
    parts = [mentions(rest, limit=LIST_LIMIT // 2)] if rest else []
    parts += [
        f"{escape(label)} ({mentions(members, limit=LIST_LIMIT // 4)})"
        for label, members in sorted(request.approver_labels.items())
    ]
    return clip_list(parts, none="nobody")


def _quietly(request: AccessRequest, rule: ResourceRule) -> str:
    """Who may decide, without mentioning anyone (`notify: tasks`): how many, from which
    groups, and where each of them has it."""
    count = len(request.possible_approvers)
    if count == 0:
        return "nobody"
    # The commander is counted, not named: on the commander's own request they are not one.
    groups = ", ".join(f"`{escape(n)}`" for n in rule.approver_groups if n != INCIDENT_COMMANDER)
    people = "1 person" if count == 1 else f"{count} people"
    source = f" from {groups}" if groups else ""
    return clip(
        f"{people}{source}, each asked privately (a direct message and App Home)", LIST_LIMIT
    )


def lookup_note(*, oncall: bool, others: bool) -> str:
    """The thread note when a group could not be looked up: one plain line for the channel
    (the details, which may name settings, go to the operators: `ops_lookup_details`).
    `oncall`: a PagerDuty group failed; `others`: a Slack user group did."""
    lines = []
    if oncall:
        lines.append("On-call could not be checked; approvers will decide.")
    if others or not oncall:
        lines.append("Some approver groups could not be checked; the other approvers will decide.")
    return "ℹ️ " + " ".join(lines)


def ops_lookup_details(request: AccessRequest, channel_id: str, notes: Sequence[str]) -> str:
    """For the operators' channel: which lookups failed, for which request, and why."""
    lines = "\n".join(f"• {escape(note)}" for note in notes)
    return clip(
        f"⚠️ Lookups failed when {request.id} (`{request.resource}`) was filed in "
        f"<#{channel_id}>; those groups counted as empty:\n{lines}",
        MESSAGE_TEXT_LIMIT,
    )


def with_lookup_notes(refusal: Wording, notes: tuple[str, ...]) -> Wording:
    """A refusal, saying that some groups could not be checked (they may be why the user was
    not eligible); the details are the operators'."""
    if not notes:
        return refusal
    return (
        refusal
        + " (Some groups could not be checked just now, which may be why: try again in a minute.)"
    )


def auto_approved(request: AccessRequest) -> str:
    """The thread reply telling the approvers that on-call approved it (see `messages`)."""
    return messages.auto_approved(request)


def approval_buttons(request: AccessRequest, rule: ResourceRule, *, block: str) -> dict[str, Any]:
    """Approve / Deny, on the card and in each approver's task; a sensitive resource asks to
    confirm either."""
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


def outcome_for_channel(
    request: AccessRequest,
    *,
    retrying: bool = False,
    timeout: timedelta | None = None,
    in_dm: bool = True,
) -> str:
    """The thread reply that tells the channel how a request went (see `messages`)."""
    return messages.told_channel(request, retrying=retrying, timeout=timeout, in_dm=in_dm)


def delivery(
    credential: IssuedCredential,
    rule: ResourceRule,
    *,
    request_id: str,
    vault_addr: str | None,
    now: datetime,
    extendable: bool = True,
) -> tuple[str, list[dict[str, Any]]]:
    """The private message with the credential: the wrapping token, or the secret itself,
    with an Extend button unless the access cannot be extended (break-glass)."""
    ends = when(credential.expires_at)
    address = f"VAULT_ADDR={vault_addr} " if vault_addr else ""
    if credential.wrapping_token is not None:
        expires = credential.wrapping_expires_at or now + timedelta(minutes=5)
        text = messages.credential_ready(rule.name, request_id, wrapped=True)
        blocks = [
            section(f"🔑 *Your {_what(rule)} credential is ready* · {request_id}"),
            section(
                "Unwrap it once, before "
                f"{when(expires)} (the wrapping token works a single time):\n"
                f"```{address}VAULT_TOKEN={credential.wrapping_token} vault unwrap```"
            ),
            context(f"Your access ends {ends}. It is revoked when the incident closes."),
        ]
        return text, blocks + _extend(extendable, request_id, rule.name)
    secret = credential.secret or {}
    lines = "\n".join(f"{key}: {value}" for key, value in secret.items())
    text = messages.credential_ready(rule.name, request_id, wrapped=False)
    blocks = [
        section(f"🔑 *Your {_what(rule)} credential* · {request_id} — shown once, not stored"),
        section(f"```{clip(lines, 2900)}```"),
        context(f"Your access ends {ends}. It is revoked when the incident closes."),
    ]
    return text, blocks + _extend(extendable, request_id, rule.name)


def _extend(extendable: bool, request_id: str, resource: str) -> list[dict[str, Any]]:
    return [extend_button(request_id, resource=resource)] if extendable else []


def deny_reason_modal(
    request_id: str,
    *,
    callback_id: str = ids.DENY_REASON_VIEW,
    request: AccessRequest | None = None,
) -> dict[str, Any]:
    """The form that asks why, showing what is denied: who asks for what, for how long, and
    their reason (only the id when the request could not be read)."""
    about: list[dict[str, Any]] = []
    deny_label = f"Why deny {request_id}?"
    if request is not None:
        deny_label = "Why deny it? (the requester is told)"
        about = [
            section(
                f"*{mention(request.requester_id)}* asks for *`{escape(request.resource)}`* "
                f"for *{format_duration(request.duration)}* · {request.id}"
            ),
            section(clip(f"*Their reason:* {escape(request.reason)}")),
        ]
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": request_id,
        "title": {"type": "plain_text", "text": "Deny"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [
            *about,
            {
                "type": "input",
                "block_id": ids.DENY_REASON_BLOCK,
                "label": {"type": "plain_text", "text": deny_label},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.DENY_REASON_INPUT,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }


def duration_choices(resources: Sequence[ResourceRule]) -> list[str]:
    """The durations the form offers: the usual ones and each resource's longest, up to the
    longest any of `resources` allows (the submit refuses one above the picked resource's)."""
    longest = max(rule.max_ttl for rule in resources)
    choices = {parse_duration(choice) for choice in DURATION_CHOICES}
    choices |= {rule.max_ttl for rule in resources}
    return [format_duration(choice) for choice in sorted(choices) if choice <= longest]


def _duration_hint(resources: Sequence[ResourceRule]) -> str:
    limits = ", ".join(f"{rule.name} {format_duration(rule.max_ttl)}" for rule in resources)
    return clip(f"Empty: the resource's default. At most: {limits}.", 150)


def request_modal(resources: list[ResourceRule], channel_id: str) -> dict[str, Any]:
    """The request form, given only the resources its user may request (at least one):
    durations up to the longest they allow, break-glass only where some has it."""
    return {
        "type": "modal",
        "callback_id": ids.REQUEST_ACCESS_VIEW,
        "private_metadata": channel_id,
        "title": {"type": "plain_text", "text": "Request access"},
        "submit": {"type": "plain_text", "text": "Request"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": ids.RESOURCE_BLOCK,
                "label": {"type": "plain_text", "text": "Resource"},
                "element": {
                    "type": "static_select",
                    "action_id": ids.RESOURCE_INPUT,
                    "options": [
                        option(rule.name, rule.name, rule.description) for rule in resources[:100]
                    ],
                },
            },
            {
                "type": "input",
                "block_id": ids.DURATION_BLOCK,
                "label": {"type": "plain_text", "text": "For how long"},
                "optional": True,
                "hint": {"type": "plain_text", "text": _duration_hint(resources)},
                "element": {
                    "type": "static_select",
                    "action_id": ids.DURATION_INPUT,
                    "options": [option(d, d) for d in duration_choices(resources)[:100]],
                },
            },
            {
                "type": "input",
                "block_id": ids.REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.REASON_INPUT,
                    "multiline": True,
                    "max_length": 500,
                },
            },
            *_break_glass_choice(resources),
        ],
    }


def _break_glass_choice(resources: list[ResourceRule]) -> list[dict[str, Any]]:
    """Offered only when some resource allows break-glass."""
    allowed = [
        f"{rule.name} (at most {format_duration(rule.break_glass.max_ttl)})"
        for rule in resources
        if rule.break_glass is not None
    ]
    if not allowed:
        return []
    return [
        {
            "type": "input",
            "block_id": ids.BREAK_GLASS_BLOCK,
            "label": {"type": "plain_text", "text": "Break glass"},
            "optional": True,
            "hint": {
                "type": "plain_text",
                "text": clip(
                    "Issued at once for a short time; approvers review it afterwards and a "
                    f"deny revokes it. Allowed for: {', '.join(allowed)}.",
                    150,
                ),
            },
            "element": {
                "type": "checkboxes",
                "action_id": ids.BREAK_GLASS_INPUT,
                "options": [
                    {
                        "text": {"type": "plain_text", "text": "Use it now, review after"},
                        "value": "break_glass",
                    }
                ],
            },
        }
    ]


ACCESS_USAGE = (
    "Usage: `/access` lists your requests and access; `/access cancel <id>` withdraws a "
    "pending request; `/access revoke <id>` ends active access early; "
    "`/access extend <id> <duration> [reason]` asks an approver for more time."
)


def my_access(
    pending: Sequence[AccessRequest],
    active: Sequence[AccessRequest],
    to_decide: Sequence[AccessRequest],
    now: datetime,
) -> str:
    del now  # times are absolute (Slack shows them in each reader's zone): nothing goes stale
    lines = ["*Your access*"]
    for request in active:
        lines.append(f"• 🔓 {request.id} `{request.resource}` — until {when(request.ends_at)}")
    for request in pending:
        lines.append(
            f"• ⏳ {request.id} `{request.resource}` — {request.state.value}, "
            f"{len(request.approvers_so_far)} of {request.approvals_required} approvals"
        )
    if len(lines) == 1:
        lines.append("• nothing pending or active")
    if to_decide:
        lines.append("*Waiting for your decision*")
        lines += [
            f"• {r.id} `{r.resource}` for {mention(r.requester_id)}: {escape(r.reason)}"
            for r in to_decide
        ]
    return clip("\n".join(lines), MESSAGE_TEXT_LIMIT)


def reminder(request: AccessRequest, waiting: frozenset[str]) -> str:
    return messages.reminder(request, waiting)


def review_buttons(request: AccessRequest, rule: ResourceRule, *, block: str) -> dict[str, Any]:
    """Confirm / Deny and revoke: the Approve and Deny actions, said as a review."""
    return decision_buttons(
        value=request.id,
        block_id=block,
        approve_action=ids.APPROVE,
        deny_action=ids.DENY,
        approve_label="Confirm it was needed",
        deny_label="Deny and revoke",
        confirm=(
            f"Confirm that {request.id} was justified?",
            f"Revoke {rule.name} from the requester now?",
        ),
        subject=f"{request.id} ({rule.name})",
    )
