"""Incident messages: the pinned card, the topic, hand-off, the close summary, the open modal."""

from typing import Any

from bot.domain.incident import Incident, Severity
from bot.domain.summary import IncidentSummary, RequestLine
from bot.slack import ids
from bot.slack.blocks import messages
from bot.slack.blocks.text import clip, clip_list, context, escape, header, section, when
from bot.slack.text import mention, plain

INCIDENT_USAGE = (
    "Usage:\n• `/incident open <title> [sev1|sev2|sev3|sev4]` (no title: a form)\n"
    "• `/incident status`\n• `/incident commander @user`\n• `/incident close <resolution>`"
)


def opening(title: str) -> str:
    """The command's ack while the channel is being made."""
    return f"Opening an incident channel for “{escape(title)}”…"


def topic(incident: Incident) -> str:
    status = "Open" if incident.is_open else "Closed"
    severity = incident.severity.value.upper()
    return f"Commander: {mention(incident.commander_id)} · {severity} · {status}"


def incident_card(incident: Incident) -> tuple[str, list[dict[str, Any]]]:
    text = messages.incident_card_text(incident)
    blocks = [
        header(f"🚨 {incident.id} · {plain(incident.title)}"),
        section(
            f"*Commander:* {mention(incident.commander_id)}\n"
            f"*Severity:* {incident.severity.value.upper()}\n"
            f"*Status:* {'Open' if incident.is_open else 'Closed'}\n"
            f"*Opened:* {when(incident.opened_at)} by {mention(incident.opened_by)}"
        ),
        context(
            "Need production access? `/request-access <resource> [duration] <reason>` here. "
            "The commander closes with `/incident close <resolution>`."
        ),
    ]
    return text, blocks


def status_text(incident: Incident, pending: int, active: int) -> str:
    return (
        f"*{incident.id}* · {escape(incident.title)}\n{topic(incident)}\n"
        f"Requests pending: {pending} · Access active: {active}"
    )


def handed_off(incident: Incident, previous: str, by_user: str) -> str:
    return (
        f"{mention(by_user)} handed command of {incident.id} from {mention(previous)} "
        f"to {mention(incident.commander_id)}."
    )


def opened_elsewhere(incident: Incident) -> str:
    if not incident.has_channel:
        return (
            f"Opened {incident.id}. You are its commander. Its channel is still being made: "
            "you will get a direct message saying where."
        )
    return f"Opened {incident.id} in <#{incident.channel_id}>. You are its commander."


def channel_made_late(incident: Incident) -> str:
    """The DM to the opener of an incident whose channel recovery made."""
    return (
        f"{incident.id} ({escape(incident.title)}) now has its channel: <#{incident.channel_id}>. "
        "Slack did not make it when you opened the incident. You are its commander."
    )


def summary_blocks(summary: IncidentSummary) -> tuple[str, list[dict[str, Any]]]:
    text = messages.summary_text(summary)
    blocks: list[dict[str, Any]] = [
        header(f"✅ {summary.incident_id} closed · audit summary"),
        section(
            f"*Resolution:* {escape(summary.resolution or '—')}\n"
            f"*Closed:* {when(summary.closed_at)} by {mention(summary.closed_by or '')}\n"
            f"*Commander:* {mention(summary.commander)}"
        ),
    ]
    if not summary.requests:
        blocks.append(section("No access was requested during this incident."))
    for line in summary.requests[:40]:
        blocks.append(section(_request_line(line)))
    if len(summary.requests) > 40:
        blocks.append(context(f"…and {len(summary.requests) - 40} more in the attached report."))
    blocks.append(section(summary.close_report()))
    unreviewed = summary.unreviewed_break_glass
    if unreviewed:
        names = clip_list(
            [f"{line.request_id} ({mention(line.requester)})" for line in unreviewed], none="—"
        )
        blocks.append(
            section(
                f"🚨 *Unreviewed break-glass:* {names} — used without approval and never "
                "reviewed by an approver."
            )
        )
    unconfirmed = summary.unconfirmed_revocations
    if unconfirmed:
        names = clip_list([line.request_id for line in unconfirmed], none="—")
        blocks.append(
            section(
                f"⚠️ *Revocation not yet confirmed by Vault:* {names}. Gatehouse keeps retrying."
            )
        )
    blocks.append(
        context(
            f"Audit chain head: event {summary.head_seq} `{summary.head_hash}` — check it with "
            f"`gatehouse audit verify --anchor {summary.head_seq}:{summary.head_hash}`"
        )
    )
    return text, blocks


_PAST = {"approve": "approved", "deny": "denied"}


def _request_line(line: RequestLine) -> str:
    decisions = (
        "; ".join(
            f"{_PAST.get(d.verdict, d.verdict)} by {mention(d.approver)} {when(d.at)}"
            for d in line.decisions
        )
        or "no decision"
    )
    if line.auto_approved_because:
        decisions = f"🤖 auto-approved: {escape(line.auto_approved_because)}"
    revoked = ""
    if line.issued_at:
        revoked = (
            f" · revoked {when(line.revocation_confirmed_at)}"
            if (line.revocation_confirmed_at)
            else " · revocation pending"
        )
    glass = " · 🚨 break-glass" if line.break_glass else ""
    extended = f" · extended {line.times_extended}×" if line.times_extended else ""
    return clip(
        f"*{line.request_id}* · `{escape(line.resource)}` · *{line.outcome}*{glass} — "
        f"{mention(line.requester)} for {line.duration}: _{escape(line.reason)}_\n{decisions} · "
        f"issued {when(line.issued_at)}{extended}{revoked}"
    )


def open_incident_modal() -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": ids.OPEN_INCIDENT_VIEW,
        "title": {"type": "plain_text", "text": "Open an incident"},
        "submit": {"type": "plain_text", "text": "Open"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": ids.TITLE_BLOCK,
                "label": {"type": "plain_text", "text": "What is happening?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.TITLE_INPUT,
                    "max_length": 150,
                    "placeholder": {"type": "plain_text", "text": "Ranker p99 over 2 s"},
                },
            },
            {
                "type": "input",
                "block_id": ids.SEVERITY_BLOCK,
                "label": {"type": "plain_text", "text": "Severity"},
                "element": {
                    "type": "static_select",
                    "action_id": ids.SEVERITY_INPUT,
                    "initial_option": _severity_option(Severity.SEV2),
                    "options": [_severity_option(s) for s in Severity],
                },
            },
        ],
    }


def _severity_option(severity: Severity) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": severity.value.upper()}, "value": severity.value}
