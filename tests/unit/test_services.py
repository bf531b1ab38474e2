"""Use cases on in-memory fakes: each rule once, with the message a user would see."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.access import NOBODY_DECIDES, RequestState, Verdict
from bot.domain.audit import Action, verify_chain
from bot.domain.eligibility import Resolution
from bot.domain.errors import (
    AlreadyDone,
    CredentialDenied,
    CredentialUnavailable,
    InvalidInput,
    InvalidState,
    NotAllowed,
    NotFound,
)
from bot.domain.grant import GrantStatus
from bot.domain.incident import Severity
from bot.domain.wording import People, Person
from bot.services import access, incidents, issuing
from bot.services.issuing import StoredIncidentTokens
from tests.unit.example_policy import ADMIN, oncall_example_policy
from tests.unit.fakes import FakeBroker, MemoryStore

POLICY = oncall_example_policy()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CHANNEL = "C0INCIDENT"


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.broker = FakeBroker(ledger=StoredIncidentTokens(self.store, self.clock))
        self.now = T0
        self.incident = incidents.start_incident(
            uow=self.store,
            title="Model latency",
            severity=Severity.SEV2,
            opened_by="U0ONCALL1",
            channel_id=CHANNEL,
            channel_name="inc-20261123-model-latency",
            now=T0,
        )

    def clock(self) -> datetime:
        return self.now

    def request(
        self,
        resource: str = "inference-logs-ro",
        *,
        by: str = "U0ONCALL2",
        duration: str | None = "2h",
        resolution: Resolution | None = None,
    ) -> str:
        return access.request_access(
            uow=self.store,
            policy=POLICY,
            channel_id=CHANNEL,
            requester_id=by,
            resource=resource,
            duration=duration,
            reason="p99 spikes",
            now=self.now,
            resolution=resolution,
        ).id

    def decide(
        self,
        request_id: str,
        approver: str,
        verdict: Verdict = Verdict.APPROVE,
        reason: str | None = None,
    ) -> access.DecisionResult:
        return access.decide_request(
            uow=self.store,
            request_id=request_id,
            approver_id=approver,
            verdict=verdict,
            reason=reason,
            now=self.now,
        )

    def issue(self, request_id: str) -> issuing.IssueResult:
        return issuing.issue_access(
            uow=self.store,
            policy=POLICY,
            broker=self.broker,
            request_id=request_id,
            clock=self.clock,
        )

    def close(self, by: str = "U0ONCALL1") -> incidents.CloseResult:
        return incidents.close_incident(
            uow=self.store,
            policy=POLICY,
            broker=self.broker,
            incident_id=self.incident.id,
            closed_by=by,
            resolution="rolled back",
            clock=self.clock,
        )

    def actions(self) -> list[str]:
        return [e.entry.action for e in self.store.state.events]


@pytest.fixture
def world() -> World:
    return World()


def test_happy_path_from_request_to_close(world: World) -> None:
    request_id = world.request()
    assert world.decide(request_id, "U0LEAD1").approved
    issued = world.issue(request_id)
    assert issued.credential is not None and issued.request.state is RequestState.ACTIVE
    assert issued.request.ends_at == T0 + timedelta(hours=2)
    assert "hvs." not in repr(issued.credential)  # the wrapping token never reaches a log line
    world.now += timedelta(minutes=20)
    closed = world.close()
    assert [g.status for g in closed.revoked] == [GrantStatus.REVOKED]
    assert world.broker.live == {}
    summary = closed.summary
    line = summary.requests[0]
    assert (line.outcome, line.requester, line.decisions[0].approver) == (
        "revoked",
        "U0ONCALL2",
        "U0LEAD1",
    )
    assert line.revocation_confirmed_at == T0 + timedelta(minutes=20)
    assert summary.head_hash == world.store.state.events[-1].hash
    assert "Chain head" in summary.to_markdown()
    assert verify_chain(world.store.state.events).ok
    assert world.actions()[-4:] == [  # the tree first, then the grant confirmed gone
        Action.GRANT_REVOCATION_REQUESTED,
        Action.INCIDENT_CLOSED,
        Action.VAULT_TOKENS_REVOKED,
        Action.GRANT_REVOKED,
    ]


def test_two_of_n_needs_two_distinct_approvers(world: World) -> None:
    request_id = world.request("feature-store-rw", duration="1h")
    assert not world.decide(request_id, "U0LEAD1").approved
    with pytest.raises(AlreadyDone, match="already approved"):
        world.decide(request_id, "U0LEAD1")
    assert world.decide(request_id, "U0SEC1").approved


def test_requester_never_approves_their_own_request(world: World) -> None:
    base = POLICY.resources["inference-logs-ro"]
    from dataclasses import replace

    policy = replace(
        POLICY, groups={**POLICY.groups, "ml-oncall": frozenset({"U0ONCALL2", "U0LEAD1"})}
    )
    request = access.request_access(
        uow=world.store,
        policy=policy,
        channel_id=CHANNEL,
        requester_id="U0LEAD1",
        resource=base.name,
        duration=None,
        reason="x",
        now=T0,
    )
    with pytest.raises(NotAllowed, match="your own request"):
        world.decide(request.id, "U0LEAD1")


def test_non_approver_is_told_who_can_approve(world: World) -> None:
    request_id = world.request()
    with pytest.raises(NotAllowed) as error:
        world.decide(request_id, "U0SEC1")
    assert "It can be decided by U0LEAD1, U0LEAD2, U0LEAD3." in error.value.message
    assert People.of({"U0LEAD1", "U0LEAD2", "U0LEAD3"}, none=NOBODY_DECIDES) in (
        error.value.wording.parts
    )


def test_deny_needs_a_reason_and_ends_the_request(world: World) -> None:
    request_id = world.request()
    with pytest.raises(InvalidInput, match="reason for the denial"):
        world.decide(request_id, "U0LEAD1", Verdict.DENY, reason="  ")
    denied = world.decide(request_id, "U0LEAD1", Verdict.DENY, reason="use the replica")
    assert denied.request.state is RequestState.DENIED
    with pytest.raises(InvalidState, match="already denied"):
        world.decide(request_id, "U0LEAD2")
    assert world.issue(request_id).credential is None


@pytest.mark.parametrize(
    ("resource", "requester", "duration", "error", "message"),
    [
        ("no-such-thing", "U0ONCALL2", None, NotFound, "Known resources: feature-store-rw"),
        ("inference-logs-ro", "U0SEC1", None, NotAllowed, "Only members of ml-oncall"),
        ("inference-logs-ro", "U0ONCALL2", "5h", InvalidInput, "at most 4h"),
        ("inference-logs-ro", "U0ONCALL2", "soon", InvalidInput, "not a duration"),
    ],
)
def test_bad_requests_get_clear_errors_and_change_nothing(
    world: World,
    resource: str,
    requester: str,
    duration: str | None,
    error: type[Exception],
    message: str,
) -> None:
    before = len(world.store.state.events)
    with pytest.raises(error, match=message):
        world.request(resource, by=requester, duration=duration)
    assert len(world.store.state.events) == before
    assert world.store.state.requests == {}


def test_default_ttl_applies_when_no_duration_is_given(world: World) -> None:
    request_id = world.request("feature-store-rw", duration=None)
    assert world.store.state.requests[request_id].duration == timedelta(minutes=30)


def test_requests_only_inside_an_incident_channel(world: World) -> None:
    with pytest.raises(NotFound, match="not an incident channel"):
        access.request_access(
            uow=world.store,
            policy=POLICY,
            channel_id="C0RANDOM",
            requester_id="U0ONCALL2",
            resource="inference-logs-ro",
            duration=None,
            reason="x",
            now=T0,
        )


def test_issuing_twice_gives_exactly_one_credential(world: World) -> None:
    request_id = world.request()
    world.decide(request_id, "U0LEAD1")
    first, second = world.issue(request_id), world.issue(request_id)
    assert first.credential is not None and second.credential is None
    assert second.grant is not None and second.grant.id == first.grant.id  # type: ignore[union-attr]
    assert len(world.broker.issued) == 1


def test_concurrent_issue_calls_issue_once(world: World) -> None:
    request_id = world.request()
    world.decide(request_id, "U0LEAD1")
    barrier = threading.Barrier(8)

    def click() -> None:
        barrier.wait()
        world.issue(request_id)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(world.broker.issued) == 1


def test_vault_down_keeps_the_request_approved_and_retries_without_duplicates(
    world: World,
) -> None:
    request_id = world.request()
    world.decide(request_id, "U0LEAD1")
    world.broker.fail_issue = CredentialUnavailable("Vault is unavailable (connection refused).")
    result = world.issue(request_id)
    assert result.retrying and result.error is not None and "unavailable" in result.error
    assert result.request.state is RequestState.APPROVED
    failed = world.store.state.events[-1]
    assert (failed.entry.action, failed.entry.data["retrying"]) == (Action.GRANT_ISSUE_FAILED, True)

    def retry() -> list[issuing.IssueResult]:
        return issuing.retry_issues(
            uow=world.store, policy=POLICY, broker=world.broker, clock=world.clock
        )

    assert retry() == []  # too soon: the first retry waits 15 s
    world.now += timedelta(seconds=16)
    assert retry()[0].retrying  # still down; the next wait doubles
    world.broker.fail_issue = None
    world.now += timedelta(seconds=20)
    assert retry() == []
    world.now += timedelta(seconds=15)
    issued = retry()
    assert issued[0].credential is not None
    assert issued[0].request.state is RequestState.ACTIVE
    assert retry() == [] and world.issue(request_id).credential is None
    assert world.broker.issued == [request_id]
    attempts = [g.status for g in world.store.state.grants.values()]
    assert sorted(attempts) == [GrantStatus.ACTIVE, GrantStatus.FAILED, GrantStatus.FAILED]


def test_permission_denied_fails_the_request_with_the_vault_path(world: World) -> None:
    request_id = world.request()
    world.decide(request_id, "U0LEAD1")
    world.broker.fail_issue = CredentialDenied(
        "Vault denied permission to read database/creds/inference-logs-ro"
    )
    result = world.issue(request_id)
    assert not result.retrying and result.request.state is RequestState.FAILED
    assert result.error is not None and "database/creds/inference-logs-ro" in result.error
    world.now += timedelta(hours=1)
    assert (
        issuing.retry_issues(uow=world.store, policy=POLICY, broker=world.broker, clock=world.clock)
        == []
    )


def test_incident_tokens_are_recorded_before_use_and_revoked_at_close(world: World) -> None:
    first, second = world.request(), world.request("serving-cluster-exec", duration="30m")
    for request_id in (first, second):
        world.decide(request_id, "U0LEAD1")
        world.issue(request_id)
    assert list(world.store.state.vault_tokens) == ["incident-accessor-1"]
    closed = world.close()
    assert closed.unconfirmed_tokens == []
    assert world.broker.revoked_incident_tokens == ["incident-accessor-1"]
    assert world.store.state.vault_tokens["incident-accessor-1"][1] is not None
    assert Action.VAULT_TOKENS_REVOKED in world.actions()


def test_close_cuts_the_token_tree_then_confirms_each_grant_without_revoking_it(
    world: World,
) -> None:
    requests = [world.request() for _ in range(3)]
    for request_id in requests:
        world.decide(request_id, "U0LEAD1")
        world.issue(request_id)
    closed = world.close()
    grants = {g.id for g in world.store.state.grants.values()}
    assert world.broker.revoked_incident_tokens == ["incident-accessor-1"]
    assert world.broker.revoked == []  # nothing left to revoke one by one
    assert sorted(world.broker.confirmed) == sorted(grants)  # each looked up once
    assert {g.id for g in closed.revoked} == grants and closed.unconfirmed == []
    assert [line.outcome for line in closed.summary.requests] == ["revoked"] * 3
    assert world.actions().count(Action.GRANT_REVOKED) == 3


def test_a_grant_vault_still_holds_after_the_tree_is_revoked_on_its_own(world: World) -> None:
    kept = world.request()
    world.decide(kept, "U0LEAD1")
    world.issue(kept)
    world.store.state.vault_tokens.clear()  # its incident token is not on record
    closed = world.close()
    [grant] = world.store.state.grants.values()
    assert world.broker.revoked_incident_tokens == []
    assert world.broker.confirmed == [grant.id] and world.broker.revoked == [grant.id]
    assert [g.id for g in closed.revoked] == [grant.id] and world.broker.live == {}


def test_unconfirmed_revocation_is_reported_and_stays_pending(world: World) -> None:
    request_id = world.request()
    world.decide(request_id, "U0LEAD1")
    world.issue(request_id)
    world.broker.fail_revoke = True
    closed = world.close()
    assert closed.revoked == [] and len(closed.unconfirmed) == 1
    assert closed.unconfirmed_tokens == ["incident-accessor-1"]
    grant = closed.unconfirmed[0]
    assert grant.status is GrantStatus.REVOKING and grant.revoke_attempts == 1
    assert closed.summary.unconfirmed_revocations[0].request_id == request_id
    world.broker.fail_revoke = False
    retried = issuing.revoke_grant(
        uow=world.store, broker=world.broker, grant_id=grant.id, clock=world.clock
    )
    assert retried.status is GrantStatus.REVOKED


def test_only_commander_or_admin_closes(world: World) -> None:
    with pytest.raises(NotAllowed, match="Only the commander U0ONCALL1 ") as refused:
        world.close(by="U0LEAD1")
    assert Person("U0ONCALL1") in refused.value.wording.parts
    assert world.close(by=ADMIN).incident.closed_by == ADMIN
    with pytest.raises(AlreadyDone):
        world.close()


def test_close_cancels_pending_and_approved_requests(world: World) -> None:
    pending = world.request()
    approved = world.request("feature-store-rw")
    world.decide(approved, "U0LEAD1")
    world.decide(approved, "U0SEC1")
    world.close()
    states = {r.id: r.state for r in world.store.state.requests.values()}
    assert states == {pending: RequestState.CANCELLED, approved: RequestState.CANCELLED}
    assert world.issue(approved).credential is None
    with pytest.raises(InvalidState, match="closed"):
        world.request()


def test_expiry_revokes_at_the_end_and_not_before(world: World) -> None:
    request_id = world.request(duration="30m")
    world.decide(request_id, "U0LEAD1")
    world.issue(request_id)
    world.now += timedelta(minutes=29)
    not_due = access.expire_access(
        uow=world.store, broker=world.broker, request_id=request_id, clock=world.clock
    )
    assert not_due is None
    assert world.store.state.requests[request_id].state is RequestState.ACTIVE
    world.now += timedelta(minutes=2)
    expired = access.expire_access(
        uow=world.store, broker=world.broker, request_id=request_id, clock=world.clock
    )
    assert expired is not None and expired.state is RequestState.EXPIRED
    assert expired.ended_at == T0 + timedelta(minutes=30)
    assert world.broker.live == {}
    again = access.expire_access(
        uow=world.store, broker=world.broker, request_id=request_id, clock=world.clock
    )
    assert again is None  # done once: a second worker finds nothing to do


def test_cancel_and_revoke_authorization(world: World) -> None:
    request_id = world.request()
    with pytest.raises(NotAllowed, match="Only U0ONCALL2 can cancel") as refused:
        access.cancel_request(uow=world.store, request_id=request_id, by_user="U0LEAD1", now=T0)
    assert Person("U0ONCALL2") in refused.value.wording.parts
    access.cancel_request(
        uow=world.store, request_id=request_id.lower(), by_user="U0ONCALL2", now=T0
    )
    other = world.request()
    world.decide(other, "U0LEAD2")
    world.issue(other)
    with pytest.raises(NotAllowed, match="can revoke it"):
        access.revoke_access(
            uow=world.store,
            policy=POLICY,
            broker=world.broker,
            request_id=other,
            by_user="U0SEC1",
            clock=world.clock,
        )
    grant = access.revoke_access(
        uow=world.store,
        policy=POLICY,
        broker=world.broker,
        request_id=other,
        by_user="U0LEAD3",
        clock=world.clock,
    )
    assert grant.status is GrantStatus.REVOKED


def test_commander_hand_off(world: World) -> None:
    with pytest.raises(NotAllowed):
        incidents.hand_off_incident(
            uow=world.store,
            policy=POLICY,
            incident_id=world.incident.id,
            to_user="U0LEAD1",
            by_user="U0LEAD2",
            now=T0,
        )
    moved = incidents.hand_off_incident(
        uow=world.store,
        policy=POLICY,
        incident_id=world.incident.id,
        to_user="U0LEAD1",
        by_user="U0ONCALL1",
        now=T0,
    )
    assert moved.commander_id == "U0LEAD1"
    with pytest.raises(NotAllowed):
        world.close(by="U0ONCALL1")
    assert world.close(by="U0LEAD1").summary.commander == "U0LEAD1"


def test_failed_transaction_leaves_no_trace(world: World) -> None:
    before = (len(world.store.state.events), world.store.commits)
    with pytest.raises(InvalidInput):
        access.request_access(
            uow=world.store,
            policy=POLICY,
            channel_id=CHANNEL,
            requester_id="U0ONCALL2",
            resource="inference-logs-ro",
            duration=None,
            reason="   ",
            now=T0,
        )
    assert (len(world.store.state.events), world.store.commits) == before
