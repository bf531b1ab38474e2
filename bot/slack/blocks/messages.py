"""The message catalogue: every sentence the bot says about a request, its access, an
extension or an incident, and the notification text of every message it posts.

One place, so the same thing is always said the same way, and each outcome is one sentence
that names the resource, the person and the cause once: "⌛ <@U1>, your access to
`inference-logs-ro` ended: it expired at 14:05." A sentence is said in one of three voices
(`Voice`): to the requester (their thread reply), about the requester (the card everyone
sees), or after the ask that starts a card's notification text ("<@U1> asks for `x` (1h):
access ended: it expired at 14:05"), where who and what were just said.

Everything returned here is Slack mrkdwn: user text escaped, people as mentions, times as
Slack date tokens, cut to Slack's limits by `clip` (never inside a token).
"""

from dataclasses import dataclass
from datetime import timedelta

from bot.domain.access import AccessRequest, RequestEnd, RequestState, Verdict
from bot.domain.durations import format_duration
from bot.domain.extension import Extension, ExtensionState
from bot.domain.incident import Incident
from bot.domain.summary import IncidentSummary
from bot.slack.blocks.text import MESSAGE_TEXT_LIMIT, at_time, clip, escape, mentions, when
from bot.slack.text import mention

_FAILED_PREFIX = "issue failed: "
_EMOJI = {
    RequestEnd.DENIED: "⛔",
    RequestEnd.CANCELLED: "🚫",
    RequestEnd.TIMED_OUT: "⌛",
    RequestEnd.FAILED: "⚠️",
    RequestEnd.EXPIRED: "⌛",
    RequestEnd.REVOKED: "🔒",
    RequestEnd.INCIDENT_CLOSED: "🔒",
    RequestEnd.BREAK_GLASS_DENIED: "🚨",
    RequestEnd.UNDELIVERED: "⚠️",
}


@dataclass(frozen=True)
class Voice:
    """How a sentence names the requester and what they asked for."""

    requester: str  # the requester as a subject: "you", "<@U1>", "they"
    access: str  # "your access to `x`"
    request: str  # "your request for `x` (1h)"
    own_request: str  # the request, after the requester was the subject: "their request …"
    is_requester: bool = False  # spoken to the requester: "you", never their mention


def to_requester(request: AccessRequest) -> Voice:
    """The thread reply to the requester: "<@U1>, your access to `x` …"."""
    what = _what(request)
    return Voice(
        requester="you",
        access=f"your access to {what}",
        request=f"your request for {what} ({_for(request)})",
        own_request=f"your request for {what}",
        is_requester=True,
    )


def about_requester(request: AccessRequest) -> Voice:
    """The card, which everyone sees: "<@U1>'s access to `x` …"."""
    who, what = mention(request.requester_id), _what(request)
    return Voice(
        requester=who,
        access=f"{who}'s access to {what}",
        request=f"{who}'s request for {what} ({_for(request)})",
        own_request=f"their request for {what}",
    )


def after_ask(request: AccessRequest) -> Voice:
    """After "<@U1> asks for `x` (1h): ", where who and what were just said."""
    del request  # everything it would say was just said
    return Voice(requester="they", access="access", request="the request", own_request="it")


def _what(request: AccessRequest) -> str:
    return f"`{escape(request.resource)}`"


def _for(request: AccessRequest) -> str:
    return format_duration(request.duration)


# -- asking ---------------------------------------------------------------------------------


def ask(request: AccessRequest) -> str:
    """Who asks for what, for how long: how every message about a request starts."""
    return f"{mention(request.requester_id)} asks for {_what(request)} ({_for(request)})"


def took(request: AccessRequest) -> str:
    """The break-glass ask: taken at once, without approval."""
    return f"{mention(request.requester_id)} took {_what(request)} ({_for(request)}) by break-glass"


def card_text(request: AccessRequest, *, retrying: bool = False, timeout: timedelta | None) -> str:
    """A request card's notification text: the ask first, then where it stands, then the id
    people type in `/access` (kept whole however long the rest is)."""
    start = f"🚨 {took(request)}" if request.break_glass else ask(request)
    if request.break_glass and request.awaiting_review:
        now = f"without approval: {mentions(request.possible_approvers)}, review it now."
        body = f"{start}, {now}"
    elif request.state is RequestState.PENDING:
        body = f"{start}: {escape(request.reason)}"
    else:
        status = status_line(request, after_ask(request), retrying=retrying, timeout=timeout)
        body = f"{start}: {status}"
    tail = f" ({request.id})"
    return clip(body, MESSAGE_TEXT_LIMIT - len(tail)) + tail


# -- where a request stands -----------------------------------------------------------------


def status_line(
    request: AccessRequest, voice: Voice, *, retrying: bool = False, timeout: timedelta | None
) -> str:
    """One sentence, with its emoji, for where a decided request stands now."""
    if request.state.is_terminal:
        return ended(request, voice, timeout=timeout)
    if request.break_glass:
        return _break_glass_status(request, voice, retrying=retrying)
    if request.state is RequestState.ACTIVE:
        return f"🔓 {voice.access} is active until {when(request.ends_at)}."
    if request.state is RequestState.APPROVED:
        by = _approved_by(request)
        if retrying:
            return (
                f"✅ {by}; Vault is unavailable, so Gatehouse keeps trying and will deliver "
                "the credential."
            )
        return f"✅ {by}: issuing the credential…"
    return f"⏳ {voice.request} waits for {_approvals_left(request)}."


def _approved_by(request: AccessRequest) -> str:
    if request.auto_approved_because:
        return "Approved automatically"
    return f"Approved by {mentions(request.approvers_so_far)}"


def _approvals_left(request: AccessRequest) -> str:
    left = request.approvals_required - len(request.approvers_so_far)
    return f"{left} more approval{'s' if left != 1 else ''}"


def _break_glass_status(request: AccessRequest, voice: Voice, *, retrying: bool) -> str:
    """Break-glass is never "approved": it was taken, and reviewed (or not) after the fact."""
    review = "confirmed on review" if request.reviewed_at is not None else "review pending"
    emoji = "✅" if request.reviewed_at is not None else "🚨"
    if request.state is RequestState.ACTIVE:
        return (
            f"{emoji} {voice.access} is active until {when(request.ends_at)}: issued without "
            f"approval, {review}."
        )
    if retrying:
        return (
            f"🚨 Taken without approval, {review}; Vault is unavailable, so Gatehouse keeps "
            "trying and will deliver the credential."
        )
    return f"🚨 Issuing without approval, {review}…"


def ended(request: AccessRequest, voice: Voice, *, timeout: timedelta | None) -> str:
    """How a request ended, in one sentence with its emoji: what ended, whose, and why."""
    cause = request.end_cause or RequestEnd.REVOKED
    emoji = "🚫" if request.state is RequestState.CANCELLED else _EMOJI[cause]
    return f"{emoji} {_ended(request, voice, cause, timeout)}"


def _ended(
    request: AccessRequest, voice: Voice, cause: RequestEnd, timeout: timedelta | None
) -> str:
    access_or_request = voice.access if request.state is RequestState.REVOKED else voice.request
    verb = "ended" if request.state is RequestState.REVOKED else "was cancelled"
    match cause:
        case RequestEnd.EXPIRED:
            return f"{voice.access} ended: it expired at {at_time(request.ended_at)}."
        case RequestEnd.REVOKED:
            return f"{voice.access} ended: {_revoker(request, voice)} revoked it."
        case RequestEnd.INCIDENT_CLOSED:
            return f"{access_or_request} {verb}: the incident was closed."
        case RequestEnd.BREAK_GLASS_DENIED:
            reviewer, reason = _denial(request)
            return f"{access_or_request} {verb}: {reviewer} denied it on review: {reason}"
        case RequestEnd.UNDELIVERED:
            return (
                f"{voice.access} ended: the credential was never delivered (Gatehouse "
                "stopped first). Request access again."
            )
        case RequestEnd.DENIED:
            denier, reason = _denial(request)
            return f"{denier} denied {voice.request}: {reason}"
        case RequestEnd.CANCELLED:
            return f"{voice.requester} cancelled {voice.own_request}."
        case RequestEnd.TIMED_OUT:
            within = f"within {format_duration(timeout)}" if timeout else "in time"
            return f"{voice.request} timed out: nobody decided {within}."
        case RequestEnd.FAILED:
            error = (request.end_reason or "").removeprefix(_FAILED_PREFIX) or "no reason given"
            return f"Vault could not issue {voice.access}: {escape(error)}"


def _revoker(request: AccessRequest, voice: Voice) -> str:
    if request.ended_by == request.requester_id:
        return voice.requester
    return mention(request.ended_by) if request.ended_by else "Gatehouse"


def _denial(request: AccessRequest) -> tuple[str, str]:
    """Who denied it, and why (escaped)."""
    denial = next((d for d in request.decisions if d.verdict is Verdict.DENY), None)
    if denial is None:
        return "an approver", "no reason given"
    return mention(denial.approver_id), escape(denial.reason or "no reason given")


# -- told in the card's thread --------------------------------------------------------------


def told_requester(
    request: AccessRequest,
    *,
    retrying: bool = False,
    timeout: timedelta | None = None,
    in_dm: bool = True,
) -> str:
    """The thread reply that tells the requester where their request stands. `in_dm`: the
    credential went by DM too (a `delivery: ephemeral` one was only shown in the channel)."""
    who, voice = mention(request.requester_id), to_requester(request)
    if request.state is RequestState.ACTIVE and in_dm:
        line = f"🔓 {who}, {voice.access} is ready: check your DMs."
    elif request.state is RequestState.ACTIVE:
        line = (
            f"🔓 {who}, {voice.access} is ready: the credential was shown to you once, "
            "privately, in this channel (it is not sent by DM)."
        )
    elif request.state is RequestState.APPROVED and retrying:
        line = (
            f"⏳ {who}, {voice.request} is approved, but Vault is unavailable right now; "
            "Gatehouse retries and sends the credential when it can."
        )
    else:
        line = status_line(request, voice, retrying=retrying, timeout=timeout)
        emoji, _, sentence = line.partition(" ")
        line = f"{emoji} {who}, {sentence}"
    return clip(line, MESSAGE_TEXT_LIMIT)


def auto_approved(request: AccessRequest) -> str:
    """The thread reply telling the approvers that on-call approved it, and how to undo it."""
    because = escape(request.auto_approved_because or "")
    voice = about_requester(request)
    return clip(
        f"🤖 {voice.request} was approved automatically: {because}.\n"
        f"{mentions(request.possible_approvers)}: you were not asked, but you may end this "
        f"access with `/access revoke {request.id}`.",
        MESSAGE_TEXT_LIMIT,
    )


def reminder(request: AccessRequest, waiting: frozenset[str]) -> str:
    """The thread's note of the one reminder: it mentions nobody, for each approver who has
    not decided was reminded privately, with the buttons."""
    people = "approver who has" if len(waiting) == 1 else "approvers who have"
    return clip(
        f"⏰ {request.id} ({_what(request)}) is still waiting for "
        f"{_approvals_left(request)}; the {len(waiting)} {people} not decided "
        f"{'was' if len(waiting) == 1 else 'were'} reminded privately.",
        MESSAGE_TEXT_LIMIT,
    )


# -- told privately -------------------------------------------------------------------------


def told_privately(request: AccessRequest, *, timeout: timedelta | None = None) -> str:
    """The requester's DM when their request is decided, times out or ends: one sentence
    with its cause (who denied it and why, whose revocation, the time-out)."""
    line = status_line(request, to_requester(request), timeout=timeout)
    emoji, _, sentence = line.partition(" ")
    return clip(f"{emoji} {sentence[:1].upper()}{sentence[1:]} ({request.id})", MESSAGE_TEXT_LIMIT)


def task_text(request: AccessRequest) -> str:
    """An approver's task: the ask, the reason, the id."""
    return clip(f"🙋 {ask(request)}: {escape(request.reason)}", MESSAGE_TEXT_LIMIT - 20) + (
        f" ({request.id})"
    )


def task_reminder_text(request: AccessRequest) -> str:
    """The one reminder an approver who has not decided gets."""
    return clip(f"⏰ Still waiting on you: {ask(request)}", MESSAGE_TEXT_LIMIT - 20) + (
        f" ({request.id})"
    )


def task_outcome(request: AccessRequest, approver: str, *, timeout: timedelta | None) -> str:
    """Where a task stands once the approver has nothing more to do: what they decided, or
    who decided and how it ended."""
    mine = request.decision_by(approver)
    if request.state is RequestState.PENDING and mine is not None:
        return f"✅ You approved it; it waits for {_approvals_left(request)}."
    line = status_line(request, about_requester(request), timeout=timeout)
    if request.state in (RequestState.ACTIVE, RequestState.EXPIRED, RequestState.REVOKED):
        # Who decided, which the access's own sentence no longer says.
        return f"✅ {_approved_by(request)}. {line}"
    return line


def expiry_warning_text(request: AccessRequest) -> str:
    """The requester's warning that access ends soon."""
    return f"⏳ Your access to {_what(request)} ends {when(request.ends_at)} ({request.id})."


def expiry_warning_room(room: timedelta | None) -> str:
    """What may still be done about it: the headroom `max_ttl` leaves, or nothing."""
    if room is None:
        return "Break-glass access cannot be extended: file a new request if you need more time."
    if room < timedelta(minutes=1):
        return (
            "It already ends at its maximum: file a new request if you still need access "
            "after that."
        )
    return f"It can be extended by at most {format_duration(room)}; an approver decides."


def credential_ended(request: AccessRequest, *, timeout: timedelta | None = None) -> str:
    """The credential DM once the access ended: the credential and its buttons are gone."""
    return told_privately(request, timeout=timeout)


# -- extensions -----------------------------------------------------------------------------


def extension_asked(request: AccessRequest, extension: Extension) -> str:
    """The thread reply that tells the approvers an extension waits on them."""
    return clip(
        f"⏳ {mentions(extension.possible_approvers)}: {mention(extension.requested_by)} asks "
        f"to extend their access to {_what(request)} by {format_duration(extension.duration)} "
        f"(it ends at {at_time(request.ends_at)}). Approve or deny on the card above.",
        MESSAGE_TEXT_LIMIT,
    )


def extension_outcome(request: AccessRequest, extension: Extension) -> str:
    """The thread reply once an extension is decided or applied: one sentence, the asker
    named once, what was extended, and why it went as it did."""
    who, what = mention(extension.requested_by), _what(request)
    by = format_duration(extension.duration)
    note = escape(extension.note) if extension.note else "no reason given"
    match extension.state:
        case ExtensionState.APPLIED:
            line = (
                f"⏱️ {who}, your access to {what} is extended until "
                f"{when(extension.new_ends_at)}, approved by "
                f"{mentions(extension.approvers_so_far)}. The same credential keeps working."
            )
        case ExtensionState.APPROVED:
            line = (
                f"⏳ {who}, extending your access to {what} by {by} is approved, but Vault is "
                f"unavailable; Gatehouse keeps trying. Until then it ends at "
                f"{at_time(request.ends_at)}."
            )
        case ExtensionState.DENIED:
            denial = next((d for d in extension.decisions if d.verdict is Verdict.DENY), None)
            denier = mention(denial.approver_id) if denial else "an approver"
            line = f"⛔ {who}, {denier} denied extending your access to {what} by {by}: {note}"
        case ExtensionState.FAILED:
            line = (
                f"⚠️ {who}, extending your access to {what} by {by} was approved, but Vault "
                f"would not renew it: {note}"
            )
        case _:
            line = f"🚫 {who}, extending your access to {what} by {by} was cancelled: {note}"
    return clip(line, MESSAGE_TEXT_LIMIT)


# -- private messages -----------------------------------------------------------------------


def credential_ready(resource: str, request_id: str, *, wrapped: bool) -> str:
    """The notification text of the private message that carries a credential."""
    what = f"`{escape(resource)}`"
    if wrapped:
        return f"🔑 Your credential for {what} is ready ({request_id}): unwrap it once, soon."
    return f"🔑 Your credential for {what} ({request_id}): shown once, not stored."


# -- incidents ------------------------------------------------------------------------------


def incident_card_text(incident: Incident) -> str:
    """The pinned incident card's notification text: what happens, how bad, who leads."""
    return clip(
        f"🚨 {incident.id} · {escape(incident.title)} · {incident.severity.value.upper()} · "
        f"commander {mention(incident.commander_id)}",
        MESSAGE_TEXT_LIMIT,
    )


def summary_text(summary: IncidentSummary) -> str:
    """The close summary's notification text: which incident closed, and how it ended."""
    resolution = escape(summary.resolution) if summary.resolution else "no resolution given"
    title = f" · {escape(summary.title)}" if summary.title else ""
    return clip(
        f"✅ {summary.incident_id}{title} closed: {resolution}. Its audit summary follows.",
        MESSAGE_TEXT_LIMIT,
    )
