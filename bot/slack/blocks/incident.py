"""Incident messages: the pinned card, the topic, hand-off, the close summary, the open modal."""

from datetime import timedelta
from typing import Any

from bot.domain.durations import format_duration
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
    """The pinned card: who commands, and while open the buttons that run the incident (each
    does what its command does, with the same checks)."""
    text = messages.incident_card_text(incident)
    blocks: list[dict[str, Any]] = [
        header(f"🚨 {incident.id} · {plain(incident.title)}"),
        section(
            f"*Commander:* {mention(incident.commander_id)}\n"
            f"*Severity:* {incident.severity.value.upper()}\n"
            f"*Status:* {'Open' if incident.is_open else 'Closed'}\n"
            f"*Opened:* {when(incident.opened_at)} by {mention(incident.opened_by)}"
        ),
    ]
    if incident.is_open:
        blocks += [
            {
                "type": "actions",
                "block_id": f"incident:{incident.id}",
                "elements": [
                    _button("Request access", ids.INCIDENT_REQUEST, incident.id, "primary"),
                    _button("Hand off", ids.INCIDENT_HAND_OFF, incident.id),
                    _button("Close", ids.INCIDENT_CLOSE, incident.id, "danger"),
                ],
            },
            context(
                "Or type `/request-access <resource> [duration] <reason>` here. The commander "
                "(or an incident admin) hands off and closes."
            ),
        ]
    return text, blocks


def _button(label: str, action: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action,
        "text": {"type": "plain_text", "text": label},
        "value": value,
    }
    if style is not None:
        button["style"] = style
    return button


def announce_opened(incident: Incident) -> str:
    """The announce channel's line for an incident whose channel was just made."""
    return (
        f"🚨 {incident.id} opened · {incident.severity.value.upper()} · "
        f"{escape(incident.title)} · commander {mention(incident.commander_id)} · "
        f"<#{incident.channel_id}>"
    )


def announce_closed(incident: Incident) -> str:
    """The announce channel's line for an incident just closed."""
    lasted = (
        f" after {format_duration(incident.closed_at - incident.opened_at)}"
        if incident.closed_at is not None
        else ""
    )
    resolution = f": {escape(incident.resolution)}" if incident.resolution else ""
    return (
        f"✅ {incident.id} closed{lasted} · {escape(incident.title)}{resolution} · "
        f"<#{incident.channel_id}>"
    )


def status_text(incident: Incident, pending: int, active: int) -> str:
    return (
        f"*{incident.id}* · {escape(incident.title)}\n{topic(incident)}\n"
        f"Requests pending: {pending} · Access active: {active}"
    )


def handed_off(incident: Incident, previous: str, by_user: str) -> str:
    """Who handed command to whom; the previous commander named once when it was them."""
    to = mention(incident.commander_id)
    if by_user == previous:
        return f"{mention(by_user)} handed command of {incident.id} to {to}."
    return f"{mention(by_user)} handed command of {incident.id} from {mention(previous)} to {to}."


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


def summary_blocks(
    summary: IncidentSummary, *, archive_in: timedelta | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The close summary: the incident, each request, what closing did. The chain head and how
    to verify it are in the attached report. `archive_in`: when the channel will be archived
    (None: it is not)."""
    text = messages.summary_text(summary)
    lasted = summary.lasted
    blocks: list[dict[str, Any]] = [
        header(f"✅ {summary.incident_id} closed · {plain(summary.title)}"),
        _fields(
            ("Severity", summary.severity.upper() or "—"),
            ("Commander", mention(summary.commander) if summary.commander else "—"),
            ("Opened", when(summary.opened_at)),
            (
                "Closed",
                f"{when(summary.closed_at)} by {mention(summary.closed_by or '')}"
                if summary.closed_by
                else when(summary.closed_at),
            ),
            ("Duration", format_duration(lasted) if lasted is not None else "—"),
            ("Resolution", escape(summary.resolution or "—")),
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
    blocks.append(context(_after_summary(archive_in)))
    return text, blocks


def _after_summary(archive_in: timedelta | None) -> str:
    report = "The full audit report, with how to verify it, is attached below."
    if archive_in is None:
        return report
    if archive_in <= timedelta(0):
        return f"{report} This channel is archived now."
    return f"{report} This channel stays open for {format_duration(archive_in)}, then is archived."


def _fields(*pairs: tuple[str, str]) -> dict[str, Any]:
    """A section of labelled fields, two to a row (Slack allows ten, 2000 characters each)."""
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": clip(f"*{label}*\n{value}", 2000)} for label, value in pairs
        ],
    }


_PAST = {"approve": "approved", "deny": "denied"}


def _request_line(line: RequestLine) -> str:
    # Break-glass is never approved: it was taken, then confirmed (or denied) on review.
    past = {"approve": "confirmed on review"} if line.break_glass else {}
    decisions = (
        "; ".join(
            f"{past.get(d.verdict) or _PAST.get(d.verdict, d.verdict)} by "
            f"{mention(d.approver)} {when(d.at)}"
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
    issued = f" · issued {when(line.issued_at)}" if line.issued_at else ""
    return clip(
        f"*{line.request_id}* · `{escape(line.resource)}` · *{line.outcome}*{glass} — "
        f"{mention(line.requester)} for {line.duration}: _{escape(line.reason)}_\n{decisions}"
        f"{issued}{extended}{revoked}"
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


def hand_off_modal(incident: Incident) -> dict[str, Any]:
    """The card's Hand off form: who commands next (the same as `/incident commander`)."""
    return {
        "type": "modal",
        "callback_id": ids.HAND_OFF_VIEW,
        "private_metadata": incident.id,
        "title": {"type": "plain_text", "text": "Hand off"},
        "submit": {"type": "plain_text", "text": "Hand off"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": ids.HAND_OFF_BLOCK,
                "label": {"type": "plain_text", "text": f"New commander of {incident.id}"},
                "element": {"type": "users_select", "action_id": ids.HAND_OFF_INPUT},
            }
        ],
    }


def close_modal(incident: Incident) -> dict[str, Any]:
    """The card's Close form: the resolution (the same as `/incident close`)."""
    return {
        "type": "modal",
        "callback_id": ids.CLOSE_VIEW,
        "private_metadata": incident.id,
        "title": {"type": "plain_text", "text": "Close the incident"},
        "submit": {"type": "plain_text", "text": "Close"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": ids.RESOLUTION_BLOCK,
                "label": {"type": "plain_text", "text": "How was it resolved?"},
                "hint": {
                    "type": "plain_text",
                    "text": "Closing revokes all access granted during the incident.",
                },
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.RESOLUTION_INPUT,
                    "multiline": True,
                    "max_length": 2000,
                },
            }
        ],
    }
