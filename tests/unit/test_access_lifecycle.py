"""One access lifecycle (`bot.domain.lifecycle.Access`): each step moves the request and its
grant together and returns exactly the events it caused."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import events
from bot.domain.access import AccessRequest, RequestState, Verdict
from bot.domain.errors import InvalidState
from bot.domain.events import EndCause
from bot.domain.extension import Extension, ExtensionState
from bot.domain.grant import GrantStatus
from bot.domain.incident import Incident, Severity, open_incident
from bot.domain.lifecycle import EXPIRED_REASON, NOT_WANTED_WHEN_ISSUED, Access

T0 = datetime(2026, 12, 11, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Credential:
    lease_id: str | None
    token_accessor: str | None
    wrapping_accessor: str | None
    expires_at: datetime


def vault_answer(expires_at: datetime) -> Credential:
    return Credential("lease/1", "accessor-1", "wrap-1", expires_at)


def incident() -> Incident:
    return open_incident(
        incident_id="INC-1", title="latency", severity=Severity.SEV2, opened_by="U0IC", now=T0
    )


def request(state: RequestState = RequestState.APPROVED, **changes: object) -> AccessRequest:
    base = AccessRequest(
        id="R-AAAAAAAA",
        incident_id="INC-1",
        resource="logs",
        requester_id="U0ASK",
        reason="debugging",
        duration=HOUR,
        requested_at=T0,
        approvals_required=1,
        eligible_approvers=frozenset({"U0LEAD", "U0ASK"}),
        state=state,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def issuing(now: datetime = T0) -> Access:
    access = Access(request())
    access.start_issue(grant_id="G-1", incident=incident(), now=now)
    return access


def active(now: datetime = T0) -> Access:
    access = issuing(now)
    access.issued(
        credential=vault_answer(now + HOUR), incident=incident(), now=now, awaiting_delivery=False
    )
    return access


def kinds(caused: list[events.DomainEvent]) -> list[str]:
    return [type(event).__name__ for event in caused]


def test_the_issue_starts_with_a_grant_on_record_ending_after_the_duration() -> None:
    access = Access(request())

    caused = access.start_issue(grant_id="G-1", incident=incident(), now=T0)

    assert access.grant is not None and access.grant.status is GrantStatus.ISSUING
    assert access.request.state is RequestState.APPROVED
    assert caused == [
        events.IssueStarted(
            at=T0, incident_id="INC-1", request_id="R-AAAAAAAA", grant_id="G-1", ends_at=T0 + HOUR
        )
    ]
    assert access.credential_ends_at == T0 + HOUR
    with pytest.raises(InvalidState):  # one credential per request
        access.start_issue(grant_id="G-2", incident=incident(), now=T0)


def test_an_issue_needs_an_approved_request_and_an_open_incident() -> None:
    with pytest.raises(InvalidState):
        Access(request(RequestState.PENDING)).start_issue(
            grant_id="G-1", incident=incident(), now=T0
        )
    closed = incident()
    closed.close(by_user="U0IC", resolution="fixed", is_admin=False, now=T0)
    with pytest.raises(InvalidState):
        Access(request()).start_issue(grant_id="G-1", incident=closed, now=T0)


def test_issued_makes_request_and_grant_active_at_the_earlier_end() -> None:
    access = issuing()
    later = T0 + timedelta(minutes=5)

    caused = access.issued(
        credential=vault_answer(T0 + HOUR), incident=incident(), now=later, awaiting_delivery=True
    )

    assert access.request.state is RequestState.ACTIVE and access.request.awaiting_delivery
    assert access.grant is not None and access.grant.status is GrantStatus.ACTIVE
    assert access.grant.token_accessor == "accessor-1"
    # Vault's end (an hour from the start) comes before an hour from now.
    assert access.request.ends_at == T0 + HOUR == access.credential_ends_at
    [issued] = caused
    assert isinstance(issued, events.Issued) and issued.ends_at == T0 + HOUR


def test_a_credential_issued_for_a_cancelled_request_is_revoked_at_once() -> None:
    access = issuing()
    access.request.cancel(by_user="U0ASK", now=T0 + timedelta(seconds=1))
    answered = T0 + timedelta(seconds=2)

    caused = access.issued(
        credential=vault_answer(T0 + HOUR),
        incident=incident(),
        now=answered,
        awaiting_delivery=True,
    )

    assert access.request.state is RequestState.CANCELLED
    assert access.grant is not None and access.grant.status is GrantStatus.REVOKING
    assert access.grant.lease_id == "lease/1"  # kept, so that it is revoked
    assert kinds(caused) == ["Issued", "RevocationRequested"]
    issued, asked = caused
    assert isinstance(issued, events.Issued) and issued.ends_at == answered
    assert isinstance(asked, events.RevocationRequested)
    assert asked.reason == NOT_WANTED_WHEN_ISSUED


def test_a_credential_issued_after_the_close_is_not_asked_twice() -> None:
    access = issuing()
    closed_at = T0 + timedelta(seconds=1)
    ended = access.end(EndCause.INCIDENT_CLOSED, now=closed_at, by="U0IC", reason="incident closed")
    assert kinds(ended) == ["RequestCancelled", "RevocationRequested"]
    shut = incident()
    shut.close(by_user="U0IC", resolution="fixed", is_admin=False, now=closed_at)

    caused = access.issued(
        credential=vault_answer(T0 + HOUR),
        incident=shut,
        now=T0 + timedelta(seconds=2),
        awaiting_delivery=False,
    )

    assert kinds(caused) == ["Issued"]  # its revocation was asked by the close
    [issued] = caused
    assert isinstance(issued, events.Issued) and issued.ends_at == closed_at


def test_vault_unavailable_leaves_the_request_approved_for_a_retry() -> None:
    access = issuing()
    retry_at = T0 + timedelta(seconds=15)

    caused = access.issue_failed(error="Vault is down", retry_at=retry_at, now=T0)

    assert access.request.state is RequestState.APPROVED
    assert access.grant is not None and access.grant.status is GrantStatus.FAILED
    assert access.grant.retry_at == retry_at
    assert caused == [
        events.IssueFailed(
            at=T0,
            incident_id="INC-1",
            request_id="R-AAAAAAAA",
            grant_id="G-1",
            error="Vault is down",
            retrying=True,
        )
    ]


def test_a_refusal_fails_the_request_with_its_grant() -> None:
    access = issuing()

    caused = access.issue_failed(error="permission denied", retry_at=None, now=T0)

    assert access.request.state is RequestState.FAILED
    assert access.request.end_reason == "issue failed: permission denied"
    assert access.grant is not None and access.grant.status is GrantStatus.FAILED
    assert access.grant.retry_at is None
    assert kinds(caused) == ["IssueFailed", "RequestFailed"]


def test_an_extension_moves_the_one_end() -> None:
    access = active()
    extension = Extension(
        id="X-1",
        request_id="R-AAAAAAAA",
        requested_by="U0ASK",
        duration=HOUR,
        requested_at=T0,
        approvals_required=1,
        eligible_approvers=frozenset({"U0LEAD"}),
        state=ExtensionState.APPROVED,
    )
    access.request.extensions.append(extension)

    caused = access.extend(extension, new_end=T0 + 2 * HOUR, now=T0 + timedelta(minutes=30))

    assert access.request.ends_at == T0 + 2 * HOUR == access.credential_ends_at
    assert extension.state is ExtensionState.APPLIED and extension.previous_ends_at == T0 + HOUR
    [applied] = caused
    assert isinstance(applied, events.ExtensionApplied)
    assert (applied.grant_id, applied.previous_ends_at, applied.ends_at) == (
        "G-1",
        T0 + HOUR,
        T0 + 2 * HOUR,
    )
    with pytest.raises(InvalidState):  # never earlier
        access.extend(extension, new_end=T0 + HOUR, now=T0)


def test_the_end_expires_the_request_and_asks_the_revocation_in_one_step() -> None:
    access = active()
    with pytest.raises(InvalidState):  # not due yet
        access.end(EndCause.EXPIRED, now=T0 + HOUR / 2, by=None, reason=EXPIRED_REASON)
    swept = T0 + HOUR + timedelta(seconds=3)

    caused = access.end(EndCause.EXPIRED, now=swept, by=None, reason=EXPIRED_REASON)

    assert access.request.state is RequestState.EXPIRED
    assert access.request.ended_at == access.request.ends_at == T0 + HOUR
    assert access.grant is not None and access.grant.status is GrantStatus.REVOKING
    assert access.grant.revoke_requested_at == swept
    about = {"incident_id": "INC-1", "request_id": "R-AAAAAAAA"}
    assert caused == [
        events.AccessEnded(**about, at=swept, why=EndCause.EXPIRED, reason="expired"),
        events.RevocationRequested(**about, at=swept, grant_id="G-1", reason="expired"),
    ]


@pytest.mark.parametrize(
    "cause", [EndCause.REVOKED, EndCause.INCIDENT_CLOSED, EndCause.UNDELIVERED]
)
def test_an_early_end_revokes_and_says_why_once(cause: EndCause) -> None:
    access = active()
    now = T0 + timedelta(minutes=10)

    caused = access.end(cause, now=now, by="U0LEAD", reason="enough")

    assert access.request.state is RequestState.REVOKED
    assert (access.request.ended_at, access.request.ends_at) == (now, now)
    assert (access.request.end_reason, access.request.ended_by) == ("enough", "U0LEAD")
    assert kinds(caused) == ["AccessEnded", "RevocationRequested"]
    ended, asked = caused
    assert isinstance(ended, events.AccessEnded) and ended.why is cause
    assert isinstance(asked, events.RevocationRequested) and asked.actor == "U0LEAD"
    # What has ended cannot end again.
    for again in (EndCause.EXPIRED, EndCause.INCIDENT_CLOSED):
        with pytest.raises(InvalidState):
            access.end(again, now=now, by=None, reason="again")


def test_a_close_cancels_what_was_not_issued_and_refuses_other_early_ends() -> None:
    pending = Access(request(RequestState.PENDING))

    caused = pending.end(EndCause.INCIDENT_CLOSED, now=T0, by="U0IC", reason="incident closed")

    assert pending.request.state is RequestState.CANCELLED
    assert kinds(caused) == ["RequestCancelled"]
    for cause in (EndCause.REVOKED, EndCause.EXPIRED, EndCause.UNDELIVERED):
        with pytest.raises(InvalidState):
            Access(request()).end(cause, now=T0, by=None, reason="no")


def test_a_break_glass_deny_ends_access_with_its_credential() -> None:
    access = active()
    access.request.break_glass = True

    decision, caused = access.decide(
        approver_id="U0LEAD", verdict=Verdict.DENY, now=T0 + timedelta(minutes=1), reason="no"
    )

    assert decision.verdict is Verdict.DENY
    assert access.request.state is RequestState.REVOKED
    assert access.request.end_reason == "break-glass denied by U0LEAD: no"
    assert access.grant is not None and access.grant.status is GrantStatus.REVOKING
    assert kinds(caused) == ["AccessEnded", "RevocationRequested"]


def test_a_break_glass_confirmation_ends_nothing() -> None:
    access = active()
    access.request.break_glass = True

    _, caused = access.decide(approver_id="U0LEAD", verdict=Verdict.APPROVE, now=T0)

    assert caused == [] and access.request.reviewed_at == T0
    assert access.request.state is RequestState.ACTIVE
