"""The incident summary, built from the audit trail alone, and its Markdown report."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.access import CLOSE_REASON
from bot.domain.audit import Action, AuditEvent, utc_iso

_OUTCOME_BY_ACTION = {
    Action.REQUEST_APPROVED: "approved",
    Action.BREAK_GLASS_USED: "approved",
    Action.REQUEST_DENIED: "denied",
    Action.REQUEST_CANCELLED: "cancelled",
    Action.REQUEST_TIMED_OUT: "timed out",
    Action.REQUEST_FAILED: "failed",
    Action.REQUEST_EXPIRED: "expired",
    Action.REQUEST_REVOKED: "revoked",
}


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

    def close_report(self) -> str:
        """One line on what closing did and what is still pending."""
        revoked, cancelled = self.ended_by_close("revoked"), self.ended_by_close("cancelled")
        pending = self.unconfirmed_revocations
        parts = [
            f"revoked {len(revoked)} active grant(s)",
            f"cancelled {len(cancelled)} unissued request(s)",
        ]
        if self.issued_after_close:
            parts.append(
                f"revoked {len(self.issued_after_close)} credential(s) Vault issued after the "
                "close (never delivered)"
            )
        parts += [
            "Vault confirmed every revocation"
            if not pending
            else f"{len(pending)} revocation(s) not yet confirmed by Vault (retrying)",
        ]
        if self.unrevoked_incident_tokens:
            parts.append(
                f"{len(self.unrevoked_incident_tokens)} incident token(s) not yet revoked "
                "(reconciliation retries)"
            )
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
        ]
        return "\n".join(lines)


def summarize_incident(
    incident_id: str, events: Iterable[AuditEvent], *, head: AuditEvent | None
) -> IncidentSummary:
    summary = IncidentSummary(incident_id)
    requests: dict[str, RequestLine] = {}
    for event in events:
        entry = event.entry
        if entry.incident_id != incident_id:
            continue
        summary.event_count += 1
        data: dict[str, Any] = dict(entry.data)
        if entry.request_id is None:
            _apply_incident_event(summary, entry.action, entry.actor, entry.at, data)
            continue
        line = requests.setdefault(entry.request_id, RequestLine(entry.request_id))
        _apply_request_event(line, entry.action, entry.actor, entry.at, data)
    summary.requests = list(requests.values())
    if head is not None:
        summary.head_seq, summary.head_hash = head.seq, head.hash
    return summary


def _apply_incident_event(
    summary: IncidentSummary, action: str, actor: str | None, at: datetime, data: dict[str, Any]
) -> None:
    if action == Action.INCIDENT_OPENED:
        summary.title = str(data.get("title", ""))
        summary.severity = str(data.get("severity", ""))
        summary.commander = str(data.get("commander", actor or ""))
        summary.opened_by = actor or ""
        summary.opened_at = at
    elif action == Action.COMMANDER_CHANGED:
        summary.commander = str(data.get("commander", ""))
    elif action == Action.INCIDENT_CLOSED:
        summary.closed_by = actor
        summary.closed_at = at
        summary.resolution = data.get("resolution")
    elif action == Action.VAULT_TOKENS_REVOCATION_FAILED:
        for accessor in data.get("accessors") or []:
            if accessor not in summary.unrevoked_incident_tokens:
                summary.unrevoked_incident_tokens.append(str(accessor))
    elif action == Action.VAULT_TOKENS_REVOKED:
        revoked = set(data.get("accessors") or [])
        summary.unrevoked_incident_tokens = [
            a for a in summary.unrevoked_incident_tokens if a not in revoked
        ]


def _apply_request_event(
    line: RequestLine, action: str, actor: str | None, at: datetime, data: dict[str, Any]
) -> None:
    if action == Action.REQUEST_FILED:
        line.resource = str(data.get("resource", ""))
        line.requester = actor or ""
        line.reason = str(data.get("reason", ""))
        line.duration = str(data.get("duration", ""))
        line.requested_at = at
        line.break_glass = bool(data.get("break_glass", False))
    elif action == Action.BREAK_GLASS_REVIEWED:
        line.reviewed_at = at
    elif action in _EXTENSION_OUTCOMES:
        line.extensions.append(_EXTENSION_OUTCOMES[Action(action)](actor, at, data))
        line.times_extended += action == Action.EXTENSION_APPLIED
    elif action == Action.REQUEST_DECIDED:
        line.decisions.append(
            DecisionLine(actor or "", str(data.get("verdict")), at, data.get("reason"))
        )
    elif action == Action.REQUEST_AUTO_APPROVED:
        line.auto_approved_because = str(data.get("because", ""))
    elif action == Action.GROUP_LOOKUP_FAILED:
        line.lookups_failed.append(str(data.get("error", "")))
    elif action == Action.GRANT_ISSUED and line.outcome == "approved":
        line.issued_at = at
        line.outcome = "active"
    elif action == Action.GRANT_ISSUED and line.ended_at is not None:
        line.issued_at = at
        line.issued_after_end = True
    elif action == Action.GRANT_REVOKED:
        line.revocation_confirmed_at = at
    elif action == Action.GRANT_REVOCATION_FAILED:
        line.revocation_failures += 1
    elif action in _OUTCOME_BY_ACTION:
        line.outcome = _OUTCOME_BY_ACTION[Action(action)]
        if action not in (Action.REQUEST_APPROVED, Action.BREAK_GLASS_USED):
            line.ended_at = at
            line.end_reason = data.get("reason") or data.get("error")


def _extension_applied(actor: str | None, at: datetime, data: dict[str, Any]) -> str:
    approvers = ", ".join(data.get("approvers") or []) or "-"
    ends = str(data.get("ends_at", "-")).replace("+00:00", "Z")
    return f"Extended at {_when(at)} until {ends} (approved by {approvers})"


def _extension_denied(actor: str | None, at: datetime, data: dict[str, Any]) -> str:
    return f"Extension denied by {actor or '-'} at {_when(at)}: {data.get('reason') or '-'}"


def _extension_failed(actor: str | None, at: datetime, data: dict[str, Any]) -> str:
    return f"Extension approved but not applied at {_when(at)}: {data.get('error') or '-'}"


_EXTENSION_OUTCOMES = {
    Action.EXTENSION_APPLIED: _extension_applied,
    Action.EXTENSION_DENIED: _extension_denied,
    Action.EXTENSION_FAILED: _extension_failed,
}


def _when(moment: datetime | None) -> str:
    return utc_iso(moment).replace("+00:00", "Z") if moment else "-"
