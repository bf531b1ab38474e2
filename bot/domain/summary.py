"""The incident summary, built from the audit trail alone, and its Markdown report."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.audit import Action, AuditEvent, utc_iso

_OUTCOME_BY_ACTION = {
    Action.REQUEST_APPROVED: "approved",
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
    ended_at: datetime | None = None
    outcome: str = "pending"
    end_reason: str | None = None
    revocation_confirmed_at: datetime | None = None
    revocation_failures: int = 0
    auto_approved_because: str | None = None  # approved by on-call, not by people
    lookups_failed: list[str] = field(default_factory=list)


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

    @classmethod
    def empty(cls, incident_id: str) -> "IncidentSummary":
        return cls(incident_id)

    @property
    def unconfirmed_revocations(self) -> list[RequestLine]:
        return [
            r
            for r in self.requests
            if r.issued_at
            and r.revocation_confirmed_at is None
            and r.outcome in ("revoked", "expired")
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
        for request in self.requests:
            lines += [
                f"### {request.request_id} · {request.resource} · {request.outcome}",
                "",
                f"- Requested by {request.requester} at {_when(request.requested_at)} "
                f"for {request.duration}: {request.reason}",
            ]
            if request.auto_approved_because:
                lines.append(f"- Approved automatically: {request.auto_approved_because}")
            lines += [f"- Lookup failed: {failure}" for failure in request.lookups_failed]
            for decision in request.decisions:
                because = f" ({decision.reason})" if decision.reason else ""
                verdict = {"approve": "approved", "deny": "denied"}.get(decision.verdict, "")
                lines.append(f"- {verdict} by {decision.approver} at {_when(decision.at)}{because}")
            lines.append(f"- Issued: {_when(request.issued_at)}")
            lines.append(f"- Ended: {_when(request.ended_at)} ({request.end_reason or '-'})")
            if request.issued_at:
                confirmed = _when(request.revocation_confirmed_at)
                lines.append(f"- Revocation confirmed by Vault: {confirmed}")
            if request.revocation_failures:
                lines.append(f"- Failed revocation attempts: {request.revocation_failures}")
            lines.append("")
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


def _apply_request_event(
    line: RequestLine, action: str, actor: str | None, at: datetime, data: dict[str, Any]
) -> None:
    if action == Action.REQUEST_FILED:
        line.resource = str(data.get("resource", ""))
        line.requester = actor or ""
        line.reason = str(data.get("reason", ""))
        line.duration = str(data.get("duration", ""))
        line.requested_at = at
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
    elif action == Action.GRANT_REVOKED:
        line.revocation_confirmed_at = at
    elif action == Action.GRANT_REVOCATION_FAILED:
        line.revocation_failures += 1
    elif action in _OUTCOME_BY_ACTION:
        line.outcome = _OUTCOME_BY_ACTION[Action(action)]
        if action != Action.REQUEST_APPROVED:
            line.ended_at = at
            line.end_reason = data.get("reason") or data.get("error")


def _when(moment: datetime | None) -> str:
    return utc_iso(moment).replace("+00:00", "Z") if moment else "-"
