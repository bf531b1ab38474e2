"""One access, from its request through its credential to its end.

The request is the access as people see it: its state, when it ends and why it ended, the one
record of each. The grant is only the record of the credential Vault issued for it: its ids,
the issue, the revocation asked and confirmed. `Access` pairs the request with its current grant
and is the only way to issue, extend and end access: each method moves both in one step and
returns the events that step caused, which the services append to the audit chain as they are.
So the request and its grant never disagree, and no service changes one without the other.

```
request + grant      step              request + grant          events returned
APPROVED, none       start_issue       APPROVED + ISSUING       IssueStarted
APPROVED + ISSUING   issued            ACTIVE + ACTIVE          Issued
APPROVED + ISSUING   issue_failed      APPROVED + FAILED        IssueFailed (retried)
                                       or FAILED + FAILED       IssueFailed, RequestFailed
ACTIVE + ACTIVE      extend            ACTIVE (later end)       ExtensionApplied
ACTIVE + ACTIVE      end               EXPIRED or REVOKED       AccessEnded,
                                       + REVOKING               RevocationRequested
PENDING, APPROVED    end (close,       CANCELLED, a grant       RequestCancelled
                     break-glass deny) being issued REVOKING    (RevocationRequested)
```
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypedDict

from bot.domain import events
from bot.domain.access import BREAK_GLASS_DENIED, AccessRequest, Decision, RequestState, Verdict
from bot.domain.errors import InvalidState
from bot.domain.extension import Extension
from bot.domain.grant import CredentialIds, Grant, GrantStatus
from bot.domain.incident import Incident

EXPIRED_REASON = "expired"
NOT_WANTED_WHEN_ISSUED = "no longer wanted when issued"
# Ended before any credential was issued: the request is cancelled, not revoked.
_CANCELLED_BY = frozenset({events.EndCause.INCIDENT_CLOSED, events.EndCause.BREAK_GLASS_DENIED})


class IssuedIds(CredentialIds, Protocol):
    """What Vault answered an issue with, as the lifecycle needs it: ids and Vault's end."""

    @property
    def expires_at(self) -> datetime: ...


class _AboutRequest(TypedDict):
    incident_id: str
    request_id: str


class _AboutGrant(_AboutRequest):
    grant_id: str


@dataclass
class Access:
    """A request and its current grant (None before the first issue, or after an attempt
    Vault could not serve). Load both locked, in the lock order, before calling a method."""

    request: AccessRequest
    grant: Grant | None = None

    # -- reading -----------------------------------------------------------------------------

    @property
    def credential_ends_at(self) -> datetime:
        """When Vault is to end the credential: the request's end once active; while it is
        being issued, the request's duration from the start of the issue."""
        if self.request.state is RequestState.ACTIVE and self.request.ends_at is not None:
            return self.request.ends_at
        grant = self._grant()
        return grant.created_at + self.request.duration

    # -- issue -------------------------------------------------------------------------------

    def start_issue(
        self, *, grant_id: str, incident: Incident, now: datetime
    ) -> list[events.DomainEvent]:
        """Put the credential's grant on record (ISSUING) before Vault is asked for it."""
        if self.request.state is not RequestState.APPROVED or self.grant is not None:
            raise InvalidState(f"Request {self.request.id} is not waiting for its credential.")
        incident.require_open()
        self.grant = Grant(
            id=grant_id,
            request_id=self.request.id,
            incident_id=self.request.incident_id,
            resource=self.request.resource,
            requester_id=self.request.requester_id,
            created_at=now,
        )
        return [
            events.IssueStarted(
                **self._about_grant(), at=now, actor=None, ends_at=self.credential_ends_at
            )
        ]

    def issued(
        self, *, credential: IssuedIds, incident: Incident, now: datetime, awaiting_delivery: bool
    ) -> list[events.DomainEvent]:
        """Vault issued the credential. Still wanted (the grant issuing, the request approved,
        the incident open): the access is ACTIVE until the earlier of Vault's end and the
        request's duration from now. Otherwise a close or a cancel committed first and wins:
        the credential's ids are kept and its revocation asked at once."""
        grant = self._grant()
        request = self.request
        wanted = (
            grant.status is GrantStatus.ISSUING
            and request.state is RequestState.APPROVED
            and incident.is_open
        )
        caused: list[events.DomainEvent] = []
        if wanted:
            request.activate(incident=incident, now=now, credential_ends_at=credential.expires_at)
            request.awaiting_delivery = awaiting_delivery
            grant.mark_issued(credential=credential, now=now)
            ends_at = self.credential_ends_at
        else:
            planned_end = self.credential_ends_at
            grant.attach_credential(credential)
            asked_now = grant.request_revocation(now=now)
            assert grant.revoke_requested_at is not None
            ends_at = min(planned_end, grant.revoke_requested_at)
            if asked_now:
                caused.append(
                    events.RevocationRequested(
                        **self._about_grant(), at=now, actor=None, reason=NOT_WANTED_WHEN_ISSUED
                    )
                )
        issued = events.Issued(
            **self._about_grant(),
            at=now,
            actor=None,
            lease_id=grant.lease_id,
            token_accessor=grant.token_accessor,
            wrapping_accessor=grant.wrapping_accessor,
            ends_at=ends_at,
        )
        return [issued, *caused]

    def issue_failed(
        self, *, error: str, retry_at: datetime | None, now: datetime
    ) -> list[events.DomainEvent]:
        """Vault issued nothing. `retry_at`: Vault was only unavailable (or never asked), so an
        approved request is issued again then; None: Vault refused, and the request fails."""
        grant = self._grant()
        request = self.request
        unavailable = retry_at is not None
        again = unavailable and request.state is RequestState.APPROVED
        grant.mark_failed(error=error, retry_at=retry_at if again else None)
        caused: list[events.DomainEvent] = [
            events.IssueFailed(
                **self._about_grant(), at=now, actor=None, error=error, retrying=again
            )
        ]
        if request.state is RequestState.APPROVED and not unavailable:
            request.fail(now=now, error=error)
            caused.append(
                events.RequestFailed(**self._about_request(), at=now, actor=None, error=error)
            )
        return caused

    # -- decisions ---------------------------------------------------------------------------

    def decide(
        self, *, approver_id: str, verdict: Verdict, now: datetime, reason: str | None = None
    ) -> tuple[Decision, list[events.DomainEvent]]:
        """One approver's decision on the request (`AccessRequest.decide`). On break-glass
        access a deny ends it at once, credential included: the events returned are that end
        (the decision's own events are the caller's)."""
        decision = self.request.decide(
            approver_id=approver_id, verdict=verdict, now=now, reason=reason
        )
        if not (self.request.break_glass and decision.verdict is Verdict.DENY):
            return decision, []
        ended = self.end(
            events.EndCause.BREAK_GLASS_DENIED,
            now=now,
            by=approver_id,
            reason=f"{BREAK_GLASS_DENIED} by {approver_id}: {decision.reason}",
        )
        return decision, ended

    # -- extension ---------------------------------------------------------------------------

    def extend(
        self, extension: Extension, *, new_end: datetime, now: datetime
    ) -> list[events.DomainEvent]:
        """Vault renewed the credential to `new_end`: the access now ends then."""
        grant = self._grant()
        if grant.status is not GrantStatus.ACTIVE:
            raise InvalidState(f"Grant {grant.id} is {grant.status.value}, not active.")
        previous_end = self.request.ends_at
        self.request.extend_to(new_end)
        assert previous_end is not None  # extend_to refuses access without an end
        extension.applied(previous_end=previous_end, new_end=new_end, now=now)
        return [
            events.ExtensionApplied(
                **self._about_grant(),
                at=now,
                actor=None,
                extension_id=extension.id,
                previous_ends_at=previous_end,
                ends_at=new_end,
                approvers=tuple(extension.approvers_so_far),
            )
        ]

    # -- the end -----------------------------------------------------------------------------

    def end(
        self, cause: events.EndCause, *, now: datetime, by: str | None, reason: str
    ) -> list[events.DomainEvent]:
        """End the access now, for `cause`, and ask Vault to revoke its credential.

        ACTIVE access becomes EXPIRED (`cause` EXPIRED, once its end has come) or REVOKED
        (`AccessEnded`); a request not issued yet is CANCELLED by a close or a break-glass
        deny (`RequestCancelled`). A credential being issued or issued is then to be revoked
        (`RevocationRequested`), also one left behind by a request that already ended (a
        cancel while Vault was issuing). Other ends of unissued requests, and ending what has
        nothing left to end, are refused.
        """
        request = self.request
        grant = self.grant
        live = grant is not None and grant.is_live
        if request.state.is_terminal and not live:
            raise InvalidState(f"Access for request {request.id} has ended already.")
        caused: list[events.DomainEvent] = []
        if request.state is RequestState.ACTIVE:
            if cause is events.EndCause.EXPIRED:
                request.expire(now=now)
            else:
                request.revoke(now=now, by_user=by, reason=reason)
            caused.append(
                events.AccessEnded(
                    **self._about_request(), at=now, actor=by, why=cause, reason=reason
                )
            )
        elif not request.state.is_terminal:
            if cause not in _CANCELLED_BY:
                raise InvalidState(f"Request {request.id} is {request.state.value}, not active.")
            request.withdraw(now=now, reason=reason, by=by)
            caused.append(
                events.RequestCancelled(**self._about_request(), at=now, actor=by, reason=reason)
            )
        if grant is not None and live:
            grant.request_revocation(now=now)
            caused.append(
                events.RevocationRequested(**self._about_grant(), at=now, actor=by, reason=reason)
            )
        return caused

    # -- helpers -----------------------------------------------------------------------------

    def _grant(self) -> Grant:
        if self.grant is None:
            raise InvalidState(f"Request {self.request.id} has no credential on record.")
        return self.grant

    def _about_request(self) -> _AboutRequest:
        return {"incident_id": self.request.incident_id, "request_id": self.request.id}

    def _about_grant(self) -> _AboutGrant:
        request = self.request
        return {
            "incident_id": request.incident_id,
            "request_id": request.id,
            "grant_id": self._grant().id,
        }
