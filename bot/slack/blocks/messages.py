"""The message catalogue: every sentence the bot says about a request, its access, an
extension or an incident, and the notification text of every message it posts.

One place, so the same thing is always said the same way, and each outcome is one sentence
that names the resource, the person and the cause once: "⌛ Your access to
`inference-logs-ro` ended: it expired at 14:05." A sentence is said in one of four voices
(`Voice`): to the requester (their DM), about the requester (the card everyone sees), to the
channel (a thread reply, which names the requester without a mention: they are told by DM,
once), or after the ask that starts a card's notification text ("<@U1> asks for `x` (1h):
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
    """A DM to the requester: "Your access to `x` …"."""
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


def for_channel(request: AccessRequest) -> Voice:
    """A thread reply, which the channel reads and the card above it explains: "The access to
    `x` …". The requester is not mentioned: their DM tells them, and a mention would ping them
    a second time about the same thing."""
    what = _what(request)
    return Voice(
        requester="the requester",
        access=f"the access to {what}",
        request=f"the request for {what} ({_for(request)})",
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


def card_text(
    request: AccessRequest,
    *,
    retrying: bool = False,
    timeout: timedelta | None,
    mention_approvers: bool = False,
) -> str:
    """A request card's notification text: the ask first, then where it stands, then the id
    people type in `/access` (kept whole however long the rest is). Reviewers of break-glass
    are mentioned only where the policy asks (`notify: channel-mention`): each has it as a
    task of their own."""
    start = f"🚨 {took(request)}" if request.break_glass else ask(request)
    if request.break_glass and request.awaiting_review:
        if mention_approvers:
            now = f"without approval: {mentions(request.possible_approvers)}, review it now."
        else:
            now = "without approval; its reviewers were asked privately."
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


def told_channel(
    request: AccessRequest,
    *,
    retrying: bool = False,
    timeout: timedelta | None = None,
    in_dm: bool = True,
) -> str:
    """The thread reply that tells the channel where a request stands, without pinging its
    requester (who hears by DM). `in_dm`: the credential went by DM (a `delivery: ephemeral`
    one was only shown in the channel, to the requester)."""
    voice = for_channel(request)
    if request.state is RequestState.ACTIVE:
        where = "sent to the requester by DM" if in_dm else "shown once to the requester, privately"
        line = (
            f"🔓 {_capital(voice.access)} is ready: the credential was {where}. It ends "
            f"{when(request.ends_at)}."
        )
    elif request.state is RequestState.APPROVED and retrying:
        line = (
            f"⏳ {_capital(voice.request)} is approved, but Vault is unavailable right now; "
            "Gatehouse retries and delivers the credential when it can."
        )
    else:
        line = _capitalised(status_line(request, voice, retrying=retrying, timeout=timeout))
    return clip(line, MESSAGE_TEXT_LIMIT)


def _capital(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _capitalised(line: str) -> str:
    """ "⛔ the request …" → "⛔ The request …": a line starts with its emoji, then a capital."""
    emoji, _, sentence = line.partition(" ")
    return f"{emoji} {_capital(sentence)}"


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
        f"⏰ {_capital(for_channel(request).request)} is still waiting for "
        f"{_approvals_left(request)}; the {len(waiting)} {people} not decided "
        f"{'was' if len(waiting) == 1 else 'were'} reminded privately.",
        MESSAGE_TEXT_LIMIT,
    )


# -- told privately -------------------------------------------------------------------------


def told_privately(request: AccessRequest, *, timeout: timedelta | None = None) -> str:
    """The requester's DM when their request is decided, times out or ends: one sentence
    with its cause (who denied it and why, whose revocation, the time-out)."""
    line = _capitalised(status_line(request, to_requester(request), timeout=timeout))
    return clip(f"{line} ({request.id})", MESSAGE_TEXT_LIMIT)


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


def extension_asked(
    request: AccessRequest, extension: Extension, *, mention_approvers: bool = False
) -> str:
    """The thread note that an extension waits for a decision: each approver has it as a task
    of their own, so it mentions them only where the policy asks (`notify: channel-mention`)."""
    asked = (
        f"the requester asks to extend {for_channel(request).access} by "
        f"{format_duration(extension.duration)} (it ends at {at_time(request.ends_at)})"
    )
    if mention_approvers:
        line = f"⏳ {mentions(extension.possible_approvers)}: {asked}. Approve or deny on the card."
    else:
        line = f"⏳ {_capital(asked)}; each approver who may decide was asked privately."
    return clip(line, MESSAGE_TEXT_LIMIT)


def extension_task_text(request: AccessRequest, extension: Extension) -> str:
    """An approver's extension task: who asks for how much more of what, the id."""
    ask_more = (
        f"🙋 {mention(extension.requested_by)} asks to extend {_what(request)} by "
        f"{format_duration(extension.duration)}"
    )
    because = f": {escape(extension.reason)}" if extension.reason else ""
    return clip(ask_more + because, MESSAGE_TEXT_LIMIT - 20) + f" ({request.id})"


def extension_outcome(request: AccessRequest, extension: Extension, voice: Voice) -> str:
    """An extension decided or applied, in one sentence: what was extended, by whom or why
    not. Said to the requester (their DM), to the channel (the thread) or about the requester
    (an approver's task)."""
    access = voice.access
    by = format_duration(extension.duration)
    note = escape(extension.note) if extension.note else "no reason given"
    match extension.state:
        case ExtensionState.APPLIED:
            line = (
                f"⏱️ {_capital(access)} is extended until {when(extension.new_ends_at)}, "
                f"approved by {mentions(extension.approvers_so_far)}. The same credential "
                "keeps working."
            )
        case ExtensionState.APPROVED:
            line = (
                f"⏳ Extending {access} by {by} is approved, but Vault is unavailable; "
                f"Gatehouse keeps trying. Until then it ends at {at_time(request.ends_at)}."
            )
        case ExtensionState.DENIED:
            denial = next((d for d in extension.decisions if d.verdict is Verdict.DENY), None)
            denier = mention(denial.approver_id) if denial else "An approver"
            line = f"⛔ {denier} denied extending {access} by {by}: {note}"
        case ExtensionState.FAILED:
            line = (
                f"⚠️ Extending {access} by {by} was approved, but Vault would not renew it: {note}"
            )
        case ExtensionState.CANCELLED:
            line = f"🚫 Extending {access} by {by} was cancelled: {note}"
        case _:
            line = f"⏳ Extending {access} by {by} waits for {_extension_left(extension)}."
    return clip(line, MESSAGE_TEXT_LIMIT)


def _extension_left(extension: Extension) -> str:
    left = extension.approvals_required - len(extension.approvers_so_far)
    return f"{left} more approval{'s' if left != 1 else ''}"


def extension_task_outcome(request: AccessRequest, extension: Extension, approver: str) -> str:
    """Where an extension task stands once the approver has nothing more to do."""
    mine = next((d for d in extension.decisions if d.approver_id == approver), None)
    if extension.state is ExtensionState.PENDING and mine is not None:
        return f"✅ You approved it; it waits for {_extension_left(extension)}."
    return extension_outcome(request, extension, about_requester(request))


# -- break-glass reviews --------------------------------------------------------------------


def review_text(request: AccessRequest) -> str:
    """A reviewer's task: who took what by break-glass, why, the id."""
    return clip(f"🚨 {took(request)}: {escape(request.reason)}", MESSAGE_TEXT_LIMIT - 20) + (
        f" ({request.id})"
    )


def review_outcome(request: AccessRequest, voice: Voice) -> str:
    """How a break-glass review went: confirmed (by whom), or how the access ended."""
    confirmed = f"confirmed on review by {mentions(request.approvers_so_far)}"
    if request.state.is_terminal:
        line = _capitalised(ended(request, voice, timeout=None))
        return f"✅ Break-glass {confirmed}. {line}" if request.reviewed_at else line
    if request.reviewed_at is not None:
        return f"✅ {_capital(voice.access)} taken by break-glass was {confirmed}."
    return _capitalised(status_line(request, voice, timeout=None))


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
