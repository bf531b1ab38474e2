"""The incident summary, built from the audit trail alone, and its Markdown report."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain import events
from bot.domain.access import CLOSE_REASON
from bot.domain.audit import AuditEvent, utc_iso
from bot.domain.durations import format_duration


@dataclass
class DecisionLine:
    approver: str
    verdict: str
    at: datetime
    reason: str | None


@dataclass
class RequestLine:
    request_id: str
    resource: str = ""
    requester: str = ""
    reason: str = ""
    duration: str = ""
    requested_at: datetime | None = None
    decisions: list[DecisionLine] = field(default_factory=list)
    issued_at: datetime | None = None
    issued_after_end: bool = False  # Vault answered after the request had ended (a close won)
    ended_at: datetime | None = None
    outcome: str = "pending"
    end_reason: str | None = None
    revocation_confirmed_at: datetime | None = None
    revocation_failures: int = 0
    auto_approved_because: str | None = None  # approved by on-call, not by people
    lookups_failed: list[str] = field(default_factory=list)
    break_glass: bool = False
    reviewed_at: datetime | None = None
    extensions: list[str] = field(default_factory=list)  # one line per extension outcome
    times_extended: int = 0

    @property
    def unreviewed_break_glass(self) -> bool:
        """Break-glass access nobody confirmed or denied after the fact."""
        denied = any(d.verdict == "deny" for d in self.decisions)
        return self.break_glass and self.reviewed_at is None and not denied


@dataclass
class IncidentSummary:
    incident_id: str
    title: str = ""
    severity: str = ""
    commander: str = ""
    opened_by: str = ""
    opened_at: datetime | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    resolution: str | None = None
    requests: list[RequestLine] = field(default_factory=list)
    event_count: int = 0
    head_seq: int = 0
    head_hash: str = ""
    unrevoked_incident_tokens: list[str] = field(default_factory=list)  # accessors

    def ended_by_close(self, outcome: str) -> list[RequestLine]:
        """Requests the close itself ended with `outcome` ("revoked" or "cancelled"); a
        cancelled one whose credential Vault issued after the close is not among them."""
        return [
            r
            for r in self.requests
            if r.outcome == outcome and r.end_reason == CLOSE_REASON and not r.issued_after_end
        ]

    @property
    def issued_after_close(self) -> list[RequestLine]:
        """Approved requests whose credential Vault issued after the close had committed:
        each was revoked as soon as its issue was recorded."""
        return [r for r in self.requests if r.issued_after_end and r.end_reason == CLOSE_REASON]

    @property
    def lasted(self) -> timedelta | None:
        """From the open to the close; None while either is unknown."""
        if self.opened_at is None or self.closed_at is None:
            return None
        return self.closed_at - self.opened_at

    def close_report(self) -> str:
        """One line on what closing did and what is still pending; what did not happen is
        left out."""
        revoked, cancelled = self.ended_by_close("revoked"), self.ended_by_close("cancelled")
        late = self.issued_after_close
        pending = self.unconfirmed_revocations
        parts = []
        if revoked:
            parts.append(f"revoked {_count(len(revoked), 'active grant')}")
        if cancelled:
            parts.append(f"cancelled {_count(len(cancelled), 'request')} not yet issued")
        if late:
            parts.append(
                f"revoked {_count(len(late), 'credential')} Vault issued after the close "
                "(never delivered)"
            )
        if pending:
            parts.append(
                f"{_count(len(pending), 'revocation')} not yet confirmed by Vault (retrying)"
            )
        elif revoked or late:
            parts.append("Vault confirmed every revocation")
        if self.unrevoked_incident_tokens:
            tokens = _count(len(self.unrevoked_incident_tokens), "incident token")
            parts.append(f"{tokens} not yet revoked (reconciliation retries)")
        if not parts:
            return "Closing had no access to end."
        return "Closing " + "; ".join(parts) + "."

    @classmethod
    def empty(cls, incident_id: str) -> "IncidentSummary":
        return cls(incident_id)

    @property
    def unreviewed_break_glass(self) -> list[RequestLine]:
        return [r for r in self.requests if r.unreviewed_break_glass]

    @property
    def unconfirmed_revocations(self) -> list[RequestLine]:
        return [
            r
            for r in self.requests
            if r.issued_at
            and r.revocation_confirmed_at is None
            and (r.outcome in ("revoked", "expired") or r.issued_after_end)
        ]

    def to_markdown(self) -> str:
        lines = [
            f"# Incident {self.incident_id}: {self.title}",
            "",
            f"- Severity: {self.severity}",
            f"- Opened: {_when(self.opened_at)} by {self.opened_by}",
            f"- Commander: {self.commander}",
            f"- Closed: {_when(self.closed_at)} by {self.closed_by or '-'}",
            f"- Duration: {format_duration(self.lasted) if self.lasted is not None else '-'}",
            f"- Resolution: {self.resolution or '-'}",
            "",
            "## Access requests",
            "",
        ]
        if not self.requests:
            lines.append("No access was requested.")
        for line in self.unreviewed_break_glass:
            lines.append(
                f"**Unreviewed break-glass:** {line.request_id} ({line.resource}) by "
                f"{line.requester} was used without approval and never reviewed."
            )
        if self.unreviewed_break_glass:
            lines.append("")
        for request in self.requests:
            glass = " · break-glass" if request.break_glass else ""
            lines += [
                f"### {request.request_id} · {request.resource} · {request.outcome}{glass}",
                "",
                f"- Requested by {request.requester} at {_when(request.requested_at)} "
                f"for {request.duration}: {request.reason}",
            ]
            if request.break_glass:
                review = (
                    f"reviewed at {_when(request.reviewed_at)}"
                    if request.reviewed_at
                    else "UNREVIEWED"
                    if request.unreviewed_break_glass
                    else "denied after the fact"
                )
                lines.append(f"- Break-glass: issued before approval; {review}")
            if request.auto_approved_because:
                lines.append(f"- Approved automatically: {request.auto_approved_because}")
            lines += [f"- Lookup failed: {failure}" for failure in request.lookups_failed]
            for decision in request.decisions:
                because = f" ({decision.reason})" if decision.reason else ""
                verdict = {"approve": "approved", "deny": "denied"}.get(decision.verdict, "")
                lines.append(f"- {verdict} by {decision.approver} at {_when(decision.at)}{because}")
            late = " (after the request had ended: revoked at once, never delivered)"
            issued = f"{_when(request.issued_at)}{late if request.issued_after_end else ''}"
            lines.append(f"- Issued: {issued}")
            lines += [f"- {extension}" for extension in request.extensions]
            lines.append(f"- Ended: {_when(request.ended_at)} ({request.end_reason or '-'})")
            if request.issued_at:
                confirmed = _when(request.revocation_confirmed_at)
                lines.append(f"- Revocation confirmed by Vault: {confirmed}")
            if request.revocation_failures:
                lines.append(f"- Failed revocation attempts: {request.revocation_failures}")
            lines.append("")
        if self.closed_at is not None:
            lines += ["## What closing did", "", self.close_report(), ""]
        lines += [
            "## Audit trail",
            "",
            f"{self.event_count} events for this incident. Chain head: event {self.head_seq}, "
            f"`{self.head_hash}`.",
            "",
            "Check that the audit log still holds this chain, unchanged:",
            "",
            f"    gatehouse audit verify --anchor {self.head_seq}:{self.head_hash}",
            "",
        ]
        return "\n".join(lines)


def summarize_incident(
    incident_id: str, stored: Iterable[AuditEvent], *, head: AuditEvent | None
) -> IncidentSummary:
    """Replay the incident's events, read back typed (`from_entry`), into its summary.

    Entries from every version of Gatehouse read back the same way, so a summary of an old
    chain is the one it always was; an action no event class records is counted, not read."""
    summary = IncidentSummary(incident_id)
    requests: dict[str, RequestLine] = {}
    for sealed in stored:
        entry = sealed.entry
        if entry.incident_id != incident_id:
            continue
        summary.event_count += 1
        event = events.from_entry_if_known(entry)
        if entry.request_id is None:
            if event is not None:
                _apply_incident_event(summary, event)
            continue
        line = requests.setdefault(entry.request_id, RequestLine(entry.request_id))
        if event is not None:
            _apply_request_event(line, event)
    summary.requests = list(requests.values())
    if head is not None:
        summary.head_seq, summary.head_hash = head.seq, head.hash
    return summary


def _apply_incident_event(summary: IncidentSummary, event: events.DomainEvent) -> None:
    match event:
        case events.IncidentOpened():
            summary.title = event.title
            summary.severity = event.severity
            # Entries that predate the `commander` key: whoever opened it commanded it.
            summary.commander = event.commander or event.actor or ""
            summary.opened_by = event.actor or ""
            summary.opened_at = event.at
        case events.CommanderChanged():
            summary.commander = event.commander
        case events.IncidentClosed():
            summary.closed_by = event.actor
            summary.closed_at = event.at
            summary.resolution = event.resolution
        case events.IncidentTokensRevocationFailed():
            for accessor in event.accessors:
                if accessor not in summary.unrevoked_incident_tokens:
                    summary.unrevoked_incident_tokens.append(accessor)
        case events.IncidentTokensRevoked():
            revoked = set(event.accessors)
            summary.unrevoked_incident_tokens = [
                a for a in summary.unrevoked_incident_tokens if a not in revoked
            ]
        case _:
            pass


def _apply_request_event(line: RequestLine, event: events.DomainEvent) -> None:
    match event:
        case events.RequestFiled():
            line.resource = event.resource
            line.requester = event.actor or ""
            line.reason = event.reason
            line.duration = event.duration
            line.requested_at = event.at
            line.break_glass = event.break_glass
        case events.BreakGlassConfirmed():
            line.reviewed_at = event.at
        case events.ExtensionApplied():
            approvers = ", ".join(event.approvers) or "-"
            line.extensions.append(
                f"Extended at {_when(event.at)} until {_when(event.ends_at)} "
                f"(approved by {approvers})"
            )
            line.times_extended += 1
        case events.ExtensionDenied():
            line.extensions.append(
                f"Extension denied by {event.actor or '-'} at {_when(event.at)}: "
                f"{event.reason or '-'}"
            )
        case events.ExtensionFailed():
            line.extensions.append(
                f"Extension approved but not applied at {_when(event.at)}: {event.error or '-'}"
            )
        case events.DecisionRecorded():
            line.decisions.append(
                DecisionLine(event.actor or "", event.verdict, event.at, event.reason)
            )
        case events.AutoApproved():
            line.auto_approved_because = event.because
        case events.GroupLookupFailed():
            line.lookups_failed.append(event.error)
        case events.Issued() if line.outcome == "approved":
            line.issued_at = event.at
            line.outcome = "active"
        case events.Issued() if line.ended_at is not None:
            line.issued_at = event.at
            line.issued_after_end = True
        case events.RevocationConfirmed():
            line.revocation_confirmed_at = event.at
        case events.RevocationFailed():
            line.revocation_failures += 1
        case events.RequestApproved() | events.BreakGlassUsed():
            line.outcome = "approved"
        case _:
            _apply_end(line, event)


def _apply_end(line: RequestLine, event: events.DomainEvent) -> None:
    """The request ended without access, or its access ended: how, when and why."""
    match event:
        case events.RequestDenied():
            outcome, reason = "denied", event.reason
        case events.RequestCancelled():
            outcome, reason = "cancelled", event.reason
        case events.RequestTimedOut():
            outcome, reason = "timed out", event.reason
        case events.RequestFailed():
            outcome, reason = "failed", event.error
        case events.AccessEnded():
            outcome = "expired" if event.why is events.EndCause.EXPIRED else "revoked"
            reason = event.reason
        case _:
            return
    line.outcome = outcome
    line.ended_at = event.at
    line.end_reason = reason or None


def _count(number: int, thing: str) -> str:
    """`1 request`, `2 requests`."""
    return f"{number} {thing}{'' if number == 1 else 's'}"


def _when(moment: datetime | None) -> str:
    return utc_iso(moment).replace("+00:00", "Z") if moment else "-"
