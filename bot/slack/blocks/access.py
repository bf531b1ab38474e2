"""Access messages: the approval card, outcomes, private delivery, the request and deny forms."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.domain.access import AccessRequest, RequestState
from bot.domain.durations import format_duration
from bot.domain.eligibility import Resolution
from bot.domain.ports import IssuedCredential
from bot.domain.rules import ResourceRule
from bot.slack import ids
from bot.slack.blocks.text import clip, context, escape, mention, mentions, section, when

REQUEST_USAGE = (
    "Usage: `/request-access <resource> [duration] <reason>` in an incident channel, e.g. "
    "`/request-access inference-logs-ro 2h checking p99 spikes`. Without arguments: a form."
)
DURATION_CHOICES = ("15m", "30m", "1h", "2h", "4h")

_OUTCOMES = {
    RequestState.APPROVED: "✅ Approved — issuing the credential…",
    RequestState.ACTIVE: "🔓 Access active",
    RequestState.DENIED: "⛔ Denied",
    RequestState.CANCELLED: "🚫 Cancelled",
    RequestState.TIMED_OUT: "⌛ Timed out: nobody decided in time",
    RequestState.FAILED: "⚠️ Vault could not issue the credential",
    RequestState.EXPIRED: "⌛ Access expired",
    RequestState.REVOKED: "🔒 Access revoked",
}


def approval_card(
    request: AccessRequest, rule: ResourceRule, *, retrying: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """The one message per request, updated in place; buttons only while it is pending."""
    text = (
        f"{request.id}: {mention(request.requester_id)} requests {rule.name} "
        f"for {format_duration(request.duration)}"
    )
    approvers = request.approvers_so_far
    progress = f"*Approvals:* {len(approvers)} of {request.approvals_required}"
    if approvers:
        progress += f" — {mentions(approvers)}"
    who = "*Can approve:*"
    if request.auto_approved_because:
        progress = f"🤖 *Auto-approved:* {escape(request.auto_approved_because)}"
        who = "*Approvers (told; may revoke):*"
    blocks: list[dict[str, Any]] = [
        section(
            f"*{mention(request.requester_id)}* requests *`{rule.name}`* for "
            f"*{format_duration(request.duration)}* · {request.id}\n"
            f"_{escape(rule.description)}_"
        ),
        section(f"*Reason:* {escape(request.reason)}"),
        section(f"{progress}\n{who} {_approvers(request)}"),
    ]
    if request.state is RequestState.PENDING:
        blocks.append(_buttons(request, rule))
    else:
        blocks.append(section(_outcome(request, retrying)))
    return text, blocks


def _approvers(request: AccessRequest) -> str:
    """Who may decide: named groups by label (`@ml-leads (<@U1>, <@U2>)`), then the rest."""
    named = set().union(*request.approver_labels.values()) if request.approver_labels else set()
    parts = (
        [mentions(request.possible_approvers - named)] if request.possible_approvers - named else []
    )
    parts += [
        f"{escape(label)} ({mentions(members)})"
        for label, members in sorted(request.approver_labels.items())
    ]
    return ", ".join(parts) or "nobody"


def lookup_note(found: Resolution) -> str:
    """The thread note when Slack or PagerDuty could not be asked: who counts, and why not."""
    lines = [f"• {escape(note)}" for note in found.notes]
    lines.append("Those groups count as empty for this request.")
    if found.oncall_error:
        lines.append(
            "Nobody is auto-approved on a failed on-call check: approvers decide as usual."
        )
    return clip("ℹ️ Some lookups failed when this request was filed:\n" + "\n".join(lines), 3900)


def with_lookup_notes(refusal: str, notes: tuple[str, ...]) -> str:
    """A refusal, with the lookups that failed (they may be why the user was not eligible)."""
    if not notes:
        return refusal
    return f"{refusal} (Note: {'; '.join(notes)}.)"


def auto_approved(request: AccessRequest) -> str:
    """The thread reply telling the approvers that on-call approved it, and how to undo it."""
    because = escape(request.auto_approved_because or "")
    return (
        f"🤖 {request.id} was approved automatically: {because}.\n"
        f"{mentions(request.possible_approvers)}: you were not asked, but you may end this "
        f"access with `/access revoke {request.id}`."
    )


def _outcome(request: AccessRequest, retrying: bool) -> str:
    if request.state is RequestState.APPROVED and retrying:
        return "✅ Approved — Vault is unavailable; Gatehouse keeps trying and will deliver it."
    line = _OUTCOMES.get(request.state, request.state.value)
    if request.state is RequestState.ACTIVE:
        line += f" until {when(request.ends_at)}"
    elif request.state is RequestState.DENIED:
        denial = next((d for d in request.decisions if d.reason and d.approver_id), None)
        if denial is not None:
            line += f" by {mention(denial.approver_id)}: {escape(denial.reason or '')}"
    elif request.end_reason and request.state is not RequestState.APPROVED:
        line += f" ({escape(request.end_reason)})"
    return line


def _buttons(request: AccessRequest, rule: ResourceRule) -> dict[str, Any]:
    approve: dict[str, Any] = {
        "type": "button",
        "action_id": ids.APPROVE,
        "style": "primary",
        "text": {"type": "plain_text", "text": "Approve"},
        "value": request.id,
    }
    deny: dict[str, Any] = {
        "type": "button",
        "action_id": ids.DENY,
        "style": "danger",
        "text": {"type": "plain_text", "text": "Deny"},
        "value": request.id,
    }
    if rule.sensitive:
        approve["confirm"] = _confirm(f"Grant {rule.name} to this requester?", "Approve")
        deny["confirm"] = _confirm(f"Deny access to {rule.name}?", "Deny")
    return {"type": "actions", "block_id": f"decide:{request.id}", "elements": [approve, deny]}


def _confirm(question: str, verb: str) -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": "Are you sure?"},
        "text": {"type": "plain_text", "text": question[:300]},
        "confirm": {"type": "plain_text", "text": verb},
        "deny": {"type": "plain_text", "text": "Back"},
    }


def outcome_for_requester(request: AccessRequest, *, retrying: bool = False) -> str:
    """The thread reply that tells the requester how it ended."""
    who = mention(request.requester_id)
    if request.state is RequestState.ACTIVE:
        return f"{who} your access to `{request.resource}` is ready: check your DMs."
    if request.state is RequestState.APPROVED and retrying:
        return (
            f"{who} approved — Vault is unavailable right now; Gatehouse retries and sends "
            "the credential when it can."
        )
    return f"{who} {_outcome(request, retrying)}"


def delivery(
    credential: IssuedCredential,
    rule: ResourceRule,
    *,
    request_id: str,
    vault_addr: str | None,
    now: datetime,
) -> tuple[str, list[dict[str, Any]]]:
    """The private message with the credential: the wrapping token, or the secret itself."""
    ends = when(credential.expires_at)
    address = f"VAULT_ADDR={vault_addr} " if vault_addr else ""
    if credential.wrapping_token is not None:
        expires = credential.wrapping_expires_at or now + timedelta(minutes=5)
        text = f"Your {rule.name} credential ({request_id}) is ready: unwrap it once, soon."
        blocks = [
            section(f"🔑 *Your `{rule.name}` credential is ready* · {request_id}"),
            section(
                "Unwrap it once, before "
                f"{when(expires)} (the wrapping token works a single time):\n"
                f"```{address}VAULT_TOKEN={credential.wrapping_token} vault unwrap```"
            ),
            context(f"Your access ends {ends}. It is revoked when the incident closes."),
        ]
        return text, blocks
    secret = credential.secret or {}
    lines = "\n".join(f"{key}: {value}" for key, value in secret.items())
    text = f"Your {rule.name} credential ({request_id}); shown once, not stored."
    blocks = [
        section(f"🔑 *Your `{rule.name}` credential* · {request_id} — shown once, not stored"),
        section(f"```{clip(lines, 2900)}```"),
        context(f"Your access ends {ends}. It is revoked when the incident closes."),
    ]
    return text, blocks


def deny_reason_modal(request_id: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": ids.DENY_REASON_VIEW,
        "private_metadata": request_id,
        "title": {"type": "plain_text", "text": "Deny access"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [
            {
                "type": "input",
                "block_id": ids.DENY_REASON_BLOCK,
                "label": {"type": "plain_text", "text": f"Why deny {request_id}?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.DENY_REASON_INPUT,
                    "multiline": True,
                    "max_length": 500,
                },
            }
        ],
    }


def request_modal(resources: list[ResourceRule], channel_id: str) -> dict[str, Any]:
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
                        {
                            "text": {"type": "plain_text", "text": rule.name[:75]},
                            "description": {"type": "plain_text", "text": rule.description[:75]},
                            "value": rule.name,
                        }
                        for rule in resources[:100]
                    ],
                },
            },
            {
                "type": "input",
                "block_id": ids.DURATION_BLOCK,
                "label": {"type": "plain_text", "text": "For how long"},
                "optional": True,
                "hint": {"type": "plain_text", "text": "Empty: the resource's default."},
                "element": {
                    "type": "static_select",
                    "action_id": ids.DURATION_INPUT,
                    "options": [
                        {"text": {"type": "plain_text", "text": d}, "value": d}
                        for d in DURATION_CHOICES
                    ],
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
        ],
    }


ACCESS_USAGE = (
    "Usage: `/access` lists your requests and access; `/access cancel <id>` withdraws a "
    "pending request; `/access revoke <id>` ends active access early."
)


def my_access(
    pending: Sequence[AccessRequest],
    active: Sequence[AccessRequest],
    to_decide: Sequence[AccessRequest],
    now: datetime,
) -> str:
    lines = ["*Your access*"]
    for request in active:
        left = format_duration(request.time_left(now))
        lines.append(
            f"• 🔓 {request.id} `{request.resource}` — {left} left (until {when(request.ends_at)})"
        )
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
    return clip("\n".join(lines), 3900)


def reminder(request: AccessRequest, waiting: frozenset[str]) -> str:
    return (
        f"⏰ {mentions(waiting)}: {request.id} by {mention(request.requester_id)} is still waiting "
        f"for {request.approvals_required - len(request.approvers_so_far)} more approval(s)."
    )
