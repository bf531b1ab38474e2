"""Domain objects with every field filled in, so a round trip through the store checks them all."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bot.domain.access import AccessRequest, Decision, RequestState, Verdict
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import Incident, IncidentStatus, Severity

T0 = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)
BERLIN_WINTER = timezone(timedelta(hours=1))


def incident(number: int = 1, **changes: Any) -> Incident:
    base = Incident(
        id=f"INC-20261123-{number:06d}",
        title="Model serving latency — p99 over 2 s",
        severity=Severity.SEV2,
        commander_id="U0COMMAND",
        opened_by="U0OPENER",
        opened_at=T0.astimezone(BERLIN_WINTER),
        channel_id=f"C0{number:08d}",
        channel_name=f"inc-20261123-latency-{number}",
    )
    return replace(base, **changes)


def closed_incident(number: int = 1) -> Incident:
    return incident(
        number,
        status=IncidentStatus.CLOSED,
        closed_at=T0 + timedelta(hours=3, microseconds=7),
        closed_by="U0COMMAND",
        resolution="Rolled back the tokenizer; «ünïcödé» survives too.",
    )


def access_request(incident_id: str, number: int = 1, **changes: Any) -> AccessRequest:
    base = AccessRequest(
        id=f"R-{number:06d}",
        incident_id=incident_id,
        resource="inference-logs",
        requester_id="U0REQUEST",
        reason="Need to read the p99 traces",
        duration=timedelta(hours=2, minutes=30),
        requested_at=T0 + timedelta(minutes=number),
        approvals_required=2,
        eligible_approvers=frozenset({"U0ALICE", "U0BOB", "U0CAROL"}),
        state_changed_at=T0 + timedelta(minutes=number),
    )
    return replace(base, **changes)


def ended_request(incident_id: str, number: int = 1) -> AccessRequest:
    """A request that went all the way: approved twice, active, then revoked."""
    request = access_request(incident_id, number)
    decided = T0 + timedelta(minutes=10)
    return replace(
        request,
        state=RequestState.REVOKED,
        state_changed_at=T0 + timedelta(hours=1),
        decisions=[
            Decision(request.id, "U0ALICE", Verdict.APPROVE, decided, "looks fine"),
            Decision(request.id, "U0BOB", Verdict.APPROVE, decided + timedelta(seconds=1)),
        ],
        activated_at=T0 + timedelta(minutes=11),
        ends_at=T0 + timedelta(hours=1),
        ended_at=T0 + timedelta(hours=1),
        end_reason="incident closed",
        ended_by="U0COMMAND",
    )


def grant(request: AccessRequest, number: int = 1, **changes: Any) -> Grant:
    base = Grant(
        id=f"G-{number:06d}",
        request_id=request.id,
        incident_id=request.incident_id,
        resource=request.resource,
        requester_id=request.requester_id,
        created_at=T0 + timedelta(minutes=11),
    )
    return replace(base, **changes)


def revoked_grant(request: AccessRequest) -> Grant:
    return grant(
        request,
        status=GrantStatus.REVOKED,
        lease_id="database/creds/inference-logs-ro/2f9c1b7e",
        token_accessor="hmac-accessor-8d1e",
        wrapping_accessor="wrap-accessor-2c4f",
        issued_at=T0 + timedelta(minutes=11, seconds=2),
        revoke_requested_at=T0 + timedelta(hours=1),
        revoked_at=T0 + timedelta(hours=1, seconds=3),
        revoke_attempts=2,
        last_error="vault: 503 on the first try",
    )
