"""Extending active access in place: one approval (by default) renews the same credential.

```
PENDING --enough approvals--> APPROVED --Vault renewed--> APPLIED
   |--a deny--> DENIED           |--Vault refused--> FAILED
   |--access ended first--> CANCELLED <--|
```
Access is never extended past `max_ttl` counted from the first issue, and never by issuing a
second, overlapping credential: the grant's own token (and lease) is renewed.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.access import (
    MAX_REASON,
    AccessRequest,
    Approvals,
    Decision,
    RequestState,
    Tally,
    Verdict,
)
from bot.domain.durations import format_duration
from bot.domain.errors import AlreadyDone, InvalidState, NotAllowed
from bot.domain.incident import Incident
from bot.domain.rules import AccessPolicy, ResourceRule
from bot.domain.text import optional_text
from bot.domain.wording import Person, Wording


class ExtensionState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"
    DENIED = "denied"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_open(self) -> bool:
        """Still waiting: for decisions (PENDING) or for Vault (APPROVED)."""
        return self in (ExtensionState.PENDING, ExtensionState.APPROVED)


@dataclass
class Extension:
    """A request to move the end of ACTIVE access later by `duration`."""

    id: str
    request_id: str
    requested_by: str
    duration: timedelta
    requested_at: datetime
    approvals_required: int
    eligible_approvers: frozenset[str]
    reason: str | None = None
    state: ExtensionState = ExtensionState.PENDING
    state_changed_at: datetime | None = None
    decisions: list[Decision] = field(default_factory=list)
    previous_ends_at: datetime | None = None
    new_ends_at: datetime | None = None
    note: str | None = None  # why it was denied, cancelled or failed

    @property
    def approvers_so_far(self) -> list[str]:
        return [d.approver_id for d in self.decisions if d.verdict is Verdict.APPROVE]

    @property
    def approvals(self) -> Approvals:
        return Approvals(self.approvals_required, self.eligible_approvers, self.requested_by)

    @property
    def possible_approvers(self) -> frozenset[str]:
        return self.approvals.possible

    def waiting_on(self) -> frozenset[str]:
        return self.approvals.waiting_on(self.decisions)

    def awaits(self, user: str) -> bool:
        return self.state is ExtensionState.PENDING and user in self.waiting_on()

    def decide(
        self, *, approver_id: str, verdict: Verdict, now: datetime, reason: str | None = None
    ) -> Decision:
        """One approver's decision: enough approvals approve, one deny ends it."""
        already = f"You already decided extension {self.id}."
        if any(d.approver_id == approver_id for d in self.decisions):
            raise AlreadyDone(already)
        if self.state is not ExtensionState.PENDING:
            raise InvalidState(f"Extension {self.id} is already {self.state.value}.")
        decision = self.approvals.decide(
            self.decisions,
            subject_id=self.request_id,
            approver_id=approver_id,
            verdict=verdict,
            reason=reason,
            now=now,
            already=already,
            own="You cannot approve or deny the extension of your own access.",
            not_approver="You are not an approver for this access.",
        )
        self.decisions.append(decision)
        tally = self.approvals.tally(self.decisions)
        if tally is Tally.DENIED:
            self._move(ExtensionState.DENIED, now, note=decision.reason)
        elif tally is Tally.APPROVED:
            self._move(ExtensionState.APPROVED, now)
        return decision

    def applied(self, *, previous_end: datetime, new_end: datetime, now: datetime) -> None:
        self._require(ExtensionState.APPROVED)
        self.previous_ends_at, self.new_ends_at = previous_end, new_end
        self._move(ExtensionState.APPLIED, now)

    def fail(self, *, error: str, now: datetime) -> None:
        self._require(ExtensionState.APPROVED)
        self._move(ExtensionState.FAILED, now, note=error)

    def cancel(self, *, reason: str, now: datetime) -> None:
        if self.state.is_open:
            self._move(ExtensionState.CANCELLED, now, note=reason)

    def _require(self, state: ExtensionState) -> None:
        if self.state is not state:
            raise InvalidState(f"Extension {self.id} is {self.state.value}, not {state.value}.")

    def _move(self, to: ExtensionState, now: datetime, *, note: str | None = None) -> None:
        self.state = to
        self.state_changed_at = now
        if note is not None:
            self.note = note


def ask_extension(
    request: AccessRequest,
    *,
    extension_id: str,
    incident: Incident,
    policy: AccessPolicy,
    rule: ResourceRule,
    by_user: str,
    duration: timedelta,
    reason: str | None,
    now: datetime,
) -> Extension:
    """The requester asks for more time on their ACTIVE access; one open ask at a time."""
    incident.require_open()
    if by_user != request.requester_id:
        raise NotAllowed(
            Wording("Only ", Person(request.requester_id), f" can extend request {request.id}.")
        )
    if request.state is not RequestState.ACTIVE or request.ends_at is None:
        raise InvalidState(
            f"Request {request.id} is {request.state.value}: only active access can be extended."
        )
    if request.break_glass:
        raise NotAllowed(
            "Break-glass access cannot be extended: file an ordinary request for approval."
        )
    if request.open_extension is not None:
        raise AlreadyDone(
            f"Request {request.id} already has an extension waiting "
            f"({request.open_extension.id}); wait for its decision."
        )
    assert request.activated_at is not None
    headroom = extension_headroom(
        activated_at=request.activated_at, ends_at=request.ends_at, max_ttl=rule.max_ttl
    )
    check_extension_duration(duration, headroom, rule.name)
    eligible = policy.approvers(rule)
    if len(eligible - {by_user}) < rule.extension_approvals_required:
        raise NotAllowed(
            f"Extending {rule.name} needs {rule.extension_approvals_required} approval(s) from "
            "people other than you, and there are not enough approvers. Ask a policy admin."
        )
    extension = Extension(
        id=extension_id,
        request_id=request.id,
        requested_by=by_user,
        duration=duration,
        requested_at=now,
        approvals_required=rule.extension_approvals_required,
        eligible_approvers=eligible,
        reason=optional_text(reason, field="reason", max_length=MAX_REASON),
        state_changed_at=now,
    )
    request.extensions.append(extension)
    return extension


def extension_headroom(
    *, activated_at: datetime, ends_at: datetime, max_ttl: timedelta
) -> timedelta:
    """How much later access may still end: `max_ttl` counts from the first issue."""
    return max(activated_at + max_ttl - ends_at, timedelta(0))


def check_extension_duration(duration: timedelta, headroom: timedelta, resource: str) -> None:
    if duration <= timedelta(0):
        raise NotAllowed("The extension must be longer than zero.")
    if headroom <= timedelta(0):
        raise NotAllowed(
            f"This access to {resource} already ends at its maximum; "
            "file a new request if you still need it."
        )
    if duration > headroom:
        raise NotAllowed(
            f"This access to {resource} can be extended by at most {format_duration(headroom)} "
            f"(the resource's maximum counts from the first issue); "
            f"you asked for {format_duration(duration)}."
        )


def new_extension_id(token: str) -> str:
    """`X-7K3QF2AB`: typed nowhere, shown in the audit trail."""
    return f"X-{token.upper()}"
