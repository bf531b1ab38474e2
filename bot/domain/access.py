"""Access requests, approval decisions and grants: the request lifecycle (docs/architecture.md).

```
PENDING --N distinct eligible approvals--> APPROVED --issued--> ACTIVE --ttl--> EXPIRED
   |--a deny--> DENIED                        |--issue failed--> FAILED
   |--requester cancels / incident closes--> CANCELLED        ACTIVE --revoke / close--> REVOKED
   |--nobody decides in time--> TIMED_OUT
```
Every transition goes through `AccessRequest._move`, which refuses anything not in the table, so a
terminal state can never change. Issuing, extending and ending access move the request together
with its grant, through `bot.domain.lifecycle.Access`.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.domain.errors import AlreadyDone, InvalidState, NotAllowed
from bot.domain.incident import Incident
from bot.domain.rules import AccessPolicy, ResourceRule
from bot.domain.text import optional_text, required_text
from bot.domain.wording import People, Person, Wording

if TYPE_CHECKING:
    from bot.domain.extension import Extension

MAX_REASON = 500
REQUEST_ID_LENGTH = 10  # `R-` and eight base32 characters (`new_request_id`)
_REQUEST_ID = re.compile(r"R-[A-Z2-7]{8}")


def is_request_id(text: str) -> bool:
    """`text` has the shape of an id `new_request_id` makes (upper case, as shown)."""
    return _REQUEST_ID.fullmatch(text) is not None


CLOSE_REASON = "incident closed"  # the end reason of everything closing an incident ends
BREAK_GLASS_DENIED = "break-glass denied"  # how the end reason of a deny on review begins
NOBODY_DECIDES = "nobody (ask a policy admin)"  # who may decide, when no approver is left


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    ACTIVE = "active"
    DENIED = "denied"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def is_terminal(self) -> bool:
        return self not in _TRANSITIONS


_TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.PENDING: frozenset(
        {
            RequestState.APPROVED,
            RequestState.DENIED,
            RequestState.CANCELLED,
            RequestState.TIMED_OUT,
        }
    ),
    RequestState.APPROVED: frozenset(
        {RequestState.ACTIVE, RequestState.FAILED, RequestState.CANCELLED}
    ),
    RequestState.ACTIVE: frozenset({RequestState.EXPIRED, RequestState.REVOKED}),
}

TERMINAL_STATES = frozenset(state for state in RequestState if state.is_terminal)


class RequestEnd(StrEnum):
    """Why a request ended, read from what is stored (its state, end reason and who ended
    it), so a message can say it in its own words."""

    DENIED = "denied"
    CANCELLED = "cancelled"  # by the requester
    TIMED_OUT = "timed out"
    FAILED = "failed"
    EXPIRED = "expired"
    REVOKED = "revoked"  # by a person
    INCIDENT_CLOSED = "incident closed"
    BREAK_GLASS_DENIED = "break-glass denied"
    UNDELIVERED = "undelivered"  # issued, never handed over; ended by recovery


class Verdict(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


@dataclass(frozen=True)
class Decision:
    request_id: str
    approver_id: str
    verdict: Verdict
    decided_at: datetime
    reason: str | None = None


class Tally(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    DENIED = "denied"


@dataclass(frozen=True)
class Approvals:
    """N distinct approvals from the eligible approvers, never from the one who asked; one deny
    ends it. One rule for requests, break-glass reviews and extensions alike."""

    required: int
    eligible: frozenset[str]
    asker: str

    @property
    def possible(self) -> frozenset[str]:
        """Who may decide: eligible, not the asker."""
        return self.eligible - {self.asker}

    def waiting_on(self, decisions: Sequence[Decision]) -> frozenset[str]:
        return self.possible - {d.approver_id for d in decisions}

    def decide(
        self,
        decisions: Sequence[Decision],
        *,
        subject_id: str,
        approver_id: str,
        verdict: Verdict,
        reason: str | None,
        now: datetime,
        already: str,
        own: str,
        not_approver: str,
    ) -> Decision:
        """One approver's decision, checked (once per approver, never the asker's own, only an
        eligible approver's) and with its reason cleaned: required to deny, an optional comment
        to approve. `already`, `own`, `not_approver` word the refusals for the subject."""
        if any(d.approver_id == approver_id for d in decisions):
            raise AlreadyDone(already)
        who = (" It can be decided by ", People.of(self.possible, none=NOBODY_DECIDES), ".")
        if approver_id == self.asker:
            raise NotAllowed(Wording(own, *who))
        if approver_id not in self.eligible:
            raise NotAllowed(Wording(not_approver, *who))
        cleaned: str | None
        if verdict is Verdict.DENY:
            cleaned = required_text(
                reason or "", field="reason for the denial", max_length=MAX_REASON
            )
        else:
            cleaned = optional_text(reason, field="comment", max_length=MAX_REASON)
        return Decision(subject_id, approver_id, verdict, now, cleaned)

    def tally(self, decisions: Sequence[Decision]) -> Tally:
        if any(d.verdict is Verdict.DENY for d in decisions):
            return Tally.DENIED
        approvers = {d.approver_id for d in decisions if d.verdict is Verdict.APPROVE}
        return Tally.APPROVED if len(approvers) >= self.required else Tally.OPEN


@dataclass
class AccessRequest:
    id: str
    incident_id: str
    resource: str
    requester_id: str
    reason: str
    duration: timedelta
    requested_at: datetime
    approvals_required: int
    eligible_approvers: frozenset[str]
    state: RequestState = RequestState.PENDING
    state_changed_at: datetime | None = None
    decisions: list[Decision] = field(default_factory=list)
    activated_at: datetime | None = None
    ends_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    ended_by: str | None = None
    reminded_at: datetime | None = None
    break_glass: bool = False  # issued at once; approvers review it after the fact
    reviewed_at: datetime | None = None  # break-glass: when enough approvers confirmed it
    extensions: "list[Extension]" = field(default_factory=list)
    # Approvers shown by group on the card: `@handle` of a Slack user group -> its members.
    approver_labels: Mapping[str, frozenset[str]] = field(default_factory=dict)
    auto_approved_because: str | None = None  # set when on-call approved it, not people
    # From an outcome (issued, expired, revoked) until the card and the requester show it.
    awaiting_delivery: bool = False  # issued, not yet handed over
    # The end the requester was last warned of (see `warn_expiry`): one warning per end.
    expiry_warned_for: datetime | None = None

    # -- reading -----------------------------------------------------------------------------

    @property
    def approvers_so_far(self) -> list[str]:
        return [d.approver_id for d in self.decisions if d.verdict is Verdict.APPROVE]

    @property
    def approvals(self) -> Approvals:
        return Approvals(self.approvals_required, self.eligible_approvers, self.requester_id)

    @property
    def possible_approvers(self) -> frozenset[str]:
        """Who may still decide: eligible, not the requester."""
        return self.approvals.possible

    @property
    def open_extension(self) -> "Extension | None":
        return next((e for e in self.extensions if e.state.is_open), None)

    @property
    def awaiting_review(self) -> bool:
        """Break-glass access that approvers have neither confirmed nor denied yet."""
        return (
            self.break_glass
            and self.reviewed_at is None
            and self.state in (RequestState.APPROVED, RequestState.ACTIVE)
            and not any(d.verdict is Verdict.DENY for d in self.decisions)
        )

    def awaits_decision_from(self, user: str) -> bool:
        """Whether `user` has something to decide here: the request, its review, an extension."""
        if self.state is RequestState.PENDING or self.awaiting_review:
            return user in self.possible_approvers and self.decision_by(user) is None
        extension = self.open_extension
        return extension is not None and extension.awaits(user)

    def decision_by(self, approver_id: str) -> Decision | None:
        return next((d for d in self.decisions if d.approver_id == approver_id), None)

    @property
    def end_cause(self) -> RequestEnd | None:
        """Why it ended (None while it has not): the state says most; the end reason tells a
        close or a break-glass deny apart, and a revocation nobody asked for is recovery's."""
        reason = self.end_reason or ""
        if not self.state.is_terminal:
            return None
        if reason == CLOSE_REASON and self.state in _CLOSABLE:
            return RequestEnd.INCIDENT_CLOSED
        if reason.startswith(BREAK_GLASS_DENIED) and self.state in _CLOSABLE:
            return RequestEnd.BREAK_GLASS_DENIED
        if self.state is RequestState.REVOKED and self.ended_by is None:
            return RequestEnd.UNDELIVERED
        return _END_CAUSES[self.state]

    def time_left(self, now: datetime) -> timedelta:
        if self.state is not RequestState.ACTIVE or self.ends_at is None:
            return timedelta(0)
        return max(self.ends_at - now, timedelta(0))

    # -- transitions ---------------------------------------------------------------------------

    def _move(self, to: RequestState, now: datetime) -> None:
        if to not in _TRANSITIONS.get(self.state, frozenset()):
            raise InvalidState(f"Request {self.id} is {self.state.value}; it cannot become {to}.")
        self.state = to
        self.state_changed_at = now

    def decide(
        self, *, approver_id: str, verdict: Verdict, now: datetime, reason: str | None = None
    ) -> Decision:
        """Record one approver's decision. N distinct approvals approve; one deny ends it."""
        earlier = self.decision_by(approver_id)
        already = f"You already {_past(earlier.verdict if earlier else verdict)} request {self.id}."
        if earlier is not None:
            raise AlreadyDone(already)
        if self.break_glass:
            if not self.awaiting_review:
                raise InvalidState(
                    f"Break-glass request {self.id} is {self.state.value}"
                    f"{' and reviewed' if self.reviewed_at else ''}: there is nothing to review."
                )
        elif self.state is not RequestState.PENDING:
            raise InvalidState(f"Request {self.id} is already {self.state.value}.")
        decision = self.approvals.decide(
            self.decisions,
            subject_id=self.id,
            approver_id=approver_id,
            verdict=verdict,
            reason=reason,
            now=now,
            already=already,
            own="You cannot approve or deny your own request.",
            not_approver=f"You are not an approver for {self.resource}.",
        )
        self.decisions.append(decision)
        tally = self.approvals.tally(self.decisions)
        if self.break_glass:
            self._review(tally, now)
        elif tally is Tally.DENIED:
            self._move(RequestState.DENIED, now)
            self._end(now, reason=f"denied: {decision.reason}", by=approver_id)
        elif tally is Tally.APPROVED:
            self._move(RequestState.APPROVED, now)
        return decision

    def _review(self, tally: Tally, now: datetime) -> None:
        """After-the-fact review of break-glass access: enough approvals confirm it. A deny
        ends it at once, credential included, which `Access.decide` does."""
        if tally is Tally.APPROVED:
            self.reviewed_at = now

    def approve_automatically(self, *, because: str, now: datetime) -> None:
        """Approved without waiting for approvers, on the stated grounds (the requester is on
        call); it then goes through the same issue path as any approved request."""
        if self.state is not RequestState.PENDING:
            raise InvalidState(f"Request {self.id} is already {self.state.value}.")
        self.auto_approved_because = because
        self._move(RequestState.APPROVED, now)

    def cancel(
        self, *, by_user: str, now: datetime, reason: str = "cancelled by requester"
    ) -> None:
        """The requester withdraws a request that has not been issued yet."""
        if by_user != self.requester_id:
            raise NotAllowed(
                Wording("Only ", Person(self.requester_id), f" can cancel request {self.id}.")
            )
        self._cancel(now, reason=reason, by=by_user)

    def withdraw(self, *, now: datetime, reason: str, by: str | None) -> None:
        """Ended before it was issued, by something other than its requester (a close, a
        break-glass deny): through `Access.end`, which also revokes a credential being issued."""
        self._cancel(now, reason=reason, by=by)

    def _cancel(self, now: datetime, *, reason: str, by: str | None) -> None:
        if self.state.is_terminal or self.state is RequestState.ACTIVE:
            raise InvalidState(
                f"Request {self.id} is {self.state.value}; there is nothing to cancel."
            )
        self._move(RequestState.CANCELLED, now)
        self._end(now, reason=reason, by=by)

    def remind(self, *, now: datetime, after: timedelta) -> frozenset[str]:
        """Once, `after` the request was filed and while it is pending: who still may decide."""
        if self.state is not RequestState.PENDING or self.reminded_at is not None:
            raise InvalidState(f"Request {self.id} needs no reminder.")
        if now < self.requested_at + after:
            raise InvalidState(f"Request {self.id} is not due for a reminder yet.")
        self.reminded_at = now
        return frozenset(a for a in self.possible_approvers if self.decision_by(a) is None)

    def warn_expiry(self, *, now: datetime, before: timedelta) -> datetime:
        """Once per end, `before` it comes, while access is active: the end warned of. An
        extension moves the end, and the new one is warned of in its turn."""
        if (
            before <= timedelta(0)
            or self.state is not RequestState.ACTIVE
            or self.ends_at is None
            or self.expiry_warned_for == self.ends_at
        ):
            raise InvalidState(f"Request {self.id} needs no expiry warning.")
        if now < self.ends_at - before or now >= self.ends_at:
            raise InvalidState(f"Request {self.id} is not due for an expiry warning.")
        self.expiry_warned_for = self.ends_at
        return self.ends_at

    def time_out(self, *, now: datetime, timeout: timedelta) -> None:
        if now < self.requested_at + timeout:
            raise InvalidState(f"Request {self.id} has not timed out yet.")
        self._move(RequestState.TIMED_OUT, now)
        self._end(now, reason="nobody decided in time", by=None)

    def activate(self, *, incident: Incident, now: datetime, credential_ends_at: datetime) -> None:
        """The credential was issued (`Access.issued`). Access ends when the credential does,
        never later than `duration` from now: Vault's own TTL is the limit we record."""
        incident.require_open()
        self._move(RequestState.ACTIVE, now)
        self.activated_at = now
        self.ends_at = min(credential_ends_at, now + self.duration)

    def fail(self, *, now: datetime, error: str) -> None:
        """Vault refused the credential (`Access.issue_failed`)."""
        self._move(RequestState.FAILED, now)
        self._end(now, reason=f"issue failed: {error}", by=None)

    def expire(self, *, now: datetime) -> None:
        """Its end has come (`Access.end`, which revokes the credential too)."""
        if self.ends_at is None or now < self.ends_at:
            raise InvalidState(f"Access for request {self.id} has not reached its end yet.")
        self._move(RequestState.EXPIRED, now)
        self._end(self.ends_at, reason="expired", by=None)

    def revoke(self, *, now: datetime, by_user: str | None, reason: str) -> None:
        """ACTIVE access ended early (`Access.end`, which revokes the credential too)."""
        self._move(RequestState.REVOKED, now)
        self._end(now, reason=reason, by=by_user)

    def extend_to(self, new_end: datetime) -> None:
        """Move the end of ACTIVE access later (an approved extension Vault renewed:
        `Access.extend`)."""
        if self.state is not RequestState.ACTIVE or self.ends_at is None:
            raise InvalidState(f"Request {self.id} is {self.state.value}, not active.")
        if new_end <= self.ends_at:
            raise InvalidState(f"Access for request {self.id} already ends at or after that.")
        self.ends_at = new_end

    def _end(self, at: datetime, *, reason: str, by: str | None) -> None:
        self.ended_at = at
        self.end_reason = reason
        self.ended_by = by
        if self.ends_at is not None and at < self.ends_at:
            self.ends_at = at
        for extension in self.extensions:
            extension.cancel(reason=f"access ended: {reason}", now=at)


_CLOSABLE = (RequestState.CANCELLED, RequestState.REVOKED)
_END_CAUSES = {
    RequestState.DENIED: RequestEnd.DENIED,
    RequestState.CANCELLED: RequestEnd.CANCELLED,
    RequestState.TIMED_OUT: RequestEnd.TIMED_OUT,
    RequestState.FAILED: RequestEnd.FAILED,
    RequestState.EXPIRED: RequestEnd.EXPIRED,
    RequestState.REVOKED: RequestEnd.REVOKED,
}


def file_request(
    *,
    request_id: str,
    incident: Incident,
    policy: AccessPolicy,
    resource: ResourceRule,
    requester_id: str,
    duration: timedelta | None,
    reason: str,
    now: datetime,
    break_glass: bool = False,
) -> AccessRequest:
    """A new request, after every rule that can be checked up front.

    PENDING; or, with `break_glass`, APPROVED at once for at most the break-glass TTL and
    left to the approvers to review after the fact.
    """
    incident.require_open()
    if not policy.can_request(requester_id, resource):
        groups = ", ".join(resource.requester_groups)
        raise NotAllowed(f"Only members of {groups} can request {resource.name}.")
    granted_for = resource.granted_duration(duration, break_glass=break_glass)
    cleaned_reason = required_text(reason, field="reason", max_length=MAX_REASON)
    eligible = policy.approvers(resource)
    if len(eligible - {requester_id}) < resource.approvals_required:
        raise NotAllowed(
            f"{resource.name} needs {resource.approvals_required} approval(s) from people other "
            "than you, and there are not enough approvers. Ask a policy admin."
        )
    return AccessRequest(
        id=request_id,
        incident_id=incident.id,
        resource=resource.name,
        requester_id=requester_id,
        reason=cleaned_reason,
        duration=granted_for,
        requested_at=now,
        approvals_required=resource.approvals_required,
        eligible_approvers=eligible,
        state=RequestState.APPROVED if break_glass else RequestState.PENDING,
        state_changed_at=now,
        break_glass=break_glass,
    )


def new_request_id(token: str) -> str:
    """`R-7K3QF2AB`: short enough to type in `/access cancel <id>`."""
    return f"R-{token.upper()}"


def _past(verdict: Verdict) -> str:
    return "approved" if verdict is Verdict.APPROVE else "denied"
