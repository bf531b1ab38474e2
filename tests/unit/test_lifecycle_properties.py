"""Random sequences of actions by random actors against the services, checking the rules that
make Gatehouse trustworthy after every step."""

import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from bot.domain.access import AccessRequest, RequestState, Verdict
from bot.domain.audit import Action, verify_chain
from bot.domain.errors import CredentialUnavailable, GatehouseError
from bot.domain.extension import ExtensionState
from bot.domain.grant import GrantStatus
from bot.domain.incident import Severity
from bot.domain.rules import AccessPolicy
from bot.services import access, extensions, incidents, issuing
from tests.unit.example_policy import EVERYONE, LEADS, ONCALL, SECURITY, example_policy
from tests.unit.fakes import FakeBroker, MemoryStore

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
VAULT_DOWN = CredentialUnavailable("Vault is unavailable (connection refused).")


def policy_with_overlap() -> AccessPolicy:
    """The example policy plus a resource whose requesters are also its approvers."""
    base = example_policy()
    logs = base.resources["inference-logs-ro"]
    peer_reviewed = replace(
        logs,
        name="peer-reviewed",
        requester_groups=("ml-leads",),
        approver_groups=("ml-leads",),
        approvals_required=2,
    )
    return replace(base, resources={**base.resources, "peer-reviewed": peer_reviewed})


POLICY = policy_with_overlap()
RESOURCES = sorted(POLICY.resources)
USERS = (*EVERYONE, LEADS[0])
DURATIONS = [None, "1s", "10m", "30m", "59m", "1h", "1h1m", "2h", "3h59m", "4h", "4h1m", "9h"]


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.broker = FakeBroker()
        self.now = START
        self.channels: list[str] = []
        self.request_ids: list[str] = []
        self.terminal_seen: dict[str, RequestState] = {}

    def clock(self) -> datetime:
        return self.now

    # -- actions ---------------------------------------------------------------------------

    @initialize()
    def first_incident(self) -> None:
        self.open_incident(ONCALL[0])

    @rule(opener=st.sampled_from(USERS))
    def open_incident(self, opener: str) -> None:
        channel = f"C{len(self.channels):04d}"
        incidents.start_incident(
            uow=self.store,
            title="model latency",
            severity=Severity.SEV2,
            opened_by=opener,
            channel_id=channel,
            channel_name=f"inc-20261123-model-latency-{len(self.channels)}",
            now=self.now,
        )
        self.channels.append(channel)

    @precondition(lambda self: self.channels)
    @rule(
        data=st.data(),
        requester=st.sampled_from((*ONCALL, *ONCALL, *USERS)),
        resource=st.sampled_from(RESOURCES),
        duration=st.sampled_from(DURATIONS),
    )
    def request(
        self, data: st.DataObject, requester: str, resource: str, duration: str | None
    ) -> None:
        channel = data.draw(st.sampled_from(self.channels))
        try:
            filed = access.request_access(
                uow=self.store,
                policy=POLICY,
                channel_id=channel,
                requester_id=requester,
                resource=resource,
                duration=duration,
                reason="debugging",
                now=self.now,
            )
        except GatehouseError:
            return
        self.request_ids.append(filed.id)

    @precondition(lambda self: self.channels)
    @rule(
        data=st.data(),
        requester=st.sampled_from((*ONCALL, *USERS)),
        resource=st.sampled_from(RESOURCES),
        duration=st.sampled_from(DURATIONS),
        vault_down=st.sampled_from([False, False, True]),
    )
    def break_glass(
        self,
        data: st.DataObject,
        requester: str,
        resource: str,
        duration: str | None,
        vault_down: bool,
    ) -> None:
        """As in the app: a break-glass request is issued as soon as it is filed."""
        channel = data.draw(st.sampled_from(self.channels))
        try:
            filed = access.request_access(
                uow=self.store,
                policy=POLICY,
                channel_id=channel,
                requester_id=requester,
                resource=resource,
                duration=duration,
                reason="nobody answers",
                now=self.now,
                break_glass=True,
            )
        except GatehouseError:
            return
        event("break-glass filed")
        self.request_ids.append(filed.id)
        self.issue_now(filed.id, vault_down)

    @precondition(lambda self: self.request_ids)
    @rule(
        data=st.data(),
        anyone=st.booleans(),
        duration=st.sampled_from(["5m", "30m", "1h", "3h"]),
    )
    def ask_extension(self, data: st.DataObject, anyone: bool, duration: str) -> None:
        """Mostly the requester of an active request asks; sometimes anyone, on anything."""
        active = [
            r.id for r in self.store.state.requests.values() if r.state is RequestState.ACTIVE
        ]
        pool = self.request_ids if anyone or not active else active
        request_id = data.draw(st.sampled_from(pool))
        requester = self.store.state.requests[request_id].requester_id
        user = data.draw(st.sampled_from(USERS)) if anyone else requester
        with contextlib.suppress(GatehouseError):
            extensions.request_extension(
                uow=self.store,
                policy=POLICY,
                request_id=request_id,
                by_user=user,
                duration=duration,
                reason=None,
                now=self.now,
            )
            event("extension asked")

    def extendable(self) -> list[str]:
        return [
            r.id
            for r in self.store.state.requests.values()
            if r.state is RequestState.ACTIVE and not r.break_glass and r.open_extension is None
        ]

    @precondition(lambda self: self.extendable())
    @rule(data=st.data(), duration=st.sampled_from(["5m", "15m", "1h"]))
    def requester_extends_and_an_approver_agrees(self, data: st.DataObject, duration: str) -> None:
        """The common path, so that extensions are exercised often."""
        request_id = data.draw(st.sampled_from(self.extendable()))
        request = self.store.state.requests[request_id]
        approver = data.draw(
            st.sampled_from(sorted(POLICY.approvers(POLICY.resource(request.resource))))
        )
        with contextlib.suppress(GatehouseError):
            extensions.request_extension(
                uow=self.store,
                policy=POLICY,
                request_id=request_id,
                by_user=request.requester_id,
                duration=duration,
                reason=None,
                now=self.now,
            )
            extensions.decide_extension(
                uow=self.store,
                request_id=request_id,
                approver_id=approver,
                verdict=Verdict.APPROVE,
                reason=None,
                now=self.now,
            )
            extensions.apply_extension(
                uow=self.store,
                policy=POLICY,
                broker=self.broker,
                request_id=request_id,
                clock=self.clock,
            )

    @precondition(lambda self: self.request_ids)
    @rule(
        data=st.data(),
        approver=st.sampled_from((*LEADS, *USERS)),
        deny=st.sampled_from([False, False, True]),
        vault_down=st.sampled_from([False, False, True]),
    )
    def decide_extension(
        self, data: st.DataObject, approver: str, deny: bool, vault_down: bool
    ) -> None:
        """An approver decides an extension; as in the app, an approval renews at once."""
        waiting = [r.id for r in self.store.state.requests.values() if r.open_extension]
        request_id = data.draw(st.sampled_from(waiting or self.request_ids))
        try:
            extensions.decide_extension(
                uow=self.store,
                request_id=request_id,
                approver_id=approver,
                verdict=Verdict.DENY if deny else Verdict.APPROVE,
                reason="enough" if deny else None,
                now=self.now,
            )
        except GatehouseError:
            return
        self.broker.fail_renew = VAULT_DOWN if vault_down else None
        try:
            extensions.retry_extensions(
                uow=self.store, policy=POLICY, broker=self.broker, clock=self.clock
            )
        finally:
            self.broker.fail_renew = None

    @precondition(lambda self: self.request_ids)
    @rule(
        data=st.data(),
        approver=st.sampled_from((*LEADS, *SECURITY, *USERS)),
        deny=st.sampled_from([False, False, False, True]),
        vault_down=st.sampled_from([False, False, False, True]),
    )
    def decide(self, data: st.DataObject, approver: str, deny: bool, vault_down: bool) -> None:
        """An approver clicks; as in the app, an approval that completes issues at once."""
        request_id = data.draw(st.sampled_from(self.request_ids[-3:]))
        verdict = Verdict.DENY if deny else Verdict.APPROVE
        try:
            result = access.decide_request(
                uow=self.store,
                request_id=request_id,
                approver_id=approver,
                verdict=verdict,
                reason="not needed" if deny else None,
                now=self.now,
            )
        except GatehouseError:
            return
        if result.approved:
            self.issue_now(request_id, vault_down)

    @precondition(lambda self: self.request_ids)
    @rule(data=st.data())
    def approver_clicks_approve(self, data: st.DataObject) -> None:
        """Someone from the resource's approver groups approves (possibly the requester)."""
        request_id = data.draw(st.sampled_from(self.request_ids[-2:]))
        resource = POLICY.resource(self.store.state.requests[request_id].resource)
        approver = data.draw(st.sampled_from(sorted(POLICY.approvers(resource))))
        try:
            result = access.decide_request(
                uow=self.store,
                request_id=request_id,
                approver_id=approver,
                verdict=Verdict.APPROVE,
                reason=None,
                now=self.now,
            )
        except GatehouseError:
            return
        if result.approved:
            self.issue_now(request_id, vault_down=False)

    def issue_now(self, request_id: str, vault_down: bool) -> None:
        self.broker.fail_issue = VAULT_DOWN if vault_down else None
        try:
            issuing.issue_access(
                uow=self.store,
                policy=POLICY,
                broker=self.broker,
                request_id=request_id,
                clock=self.clock,
            )
        except GatehouseError:
            pass
        finally:
            self.broker.fail_issue = None

    @precondition(lambda self: self.request_ids)
    @rule(data=st.data(), vault_down=st.booleans())
    def issue_again(self, data: st.DataObject, vault_down: bool) -> None:
        """A retry, a double click or another replica asking to issue the same request."""
        self.issue_now(data.draw(st.sampled_from(self.request_ids)), vault_down)

    @precondition(lambda self: self.request_ids)
    @rule(data=st.data(), user=st.sampled_from(USERS))
    def cancel(self, data: st.DataObject, user: str) -> None:
        request_id = data.draw(st.sampled_from(self.request_ids))
        with contextlib.suppress(GatehouseError):
            access.cancel_request(uow=self.store, request_id=request_id, by_user=user, now=self.now)

    @precondition(lambda self: self.request_ids)
    @rule(data=st.data(), user=st.sampled_from(USERS))
    def revoke(self, data: st.DataObject, user: str) -> None:
        request_id = data.draw(st.sampled_from(self.request_ids))
        with contextlib.suppress(GatehouseError):
            access.revoke_access(
                uow=self.store,
                policy=POLICY,
                broker=self.broker,
                request_id=request_id,
                by_user=user,
                clock=self.clock,
            )

    @precondition(lambda self: self.channels)
    @rule(data=st.data(), user=st.sampled_from(USERS), vault_down=st.booleans())
    def close(self, data: st.DataObject, user: str, vault_down: bool) -> None:
        channel = data.draw(st.sampled_from(self.channels))
        incident = self.store.state_incident_by_channel(channel)
        self.broker.fail_revoke = vault_down
        try:
            incidents.close_incident(
                uow=self.store,
                policy=POLICY,
                broker=self.broker,
                incident_id=incident,
                closed_by=user,
                resolution="fixed",
                clock=self.clock,
            )
        except GatehouseError:
            pass
        finally:
            self.broker.fail_revoke = False

    @rule(minutes=st.integers(min_value=1, max_value=180))
    def wait(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        for request_id in self.request_ids:
            access.expire_access(
                uow=self.store, broker=self.broker, request_id=request_id, clock=self.clock
            )

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def active_only_after_enough_distinct_eligible_approvals(self) -> None:
        for request in self.store.state.requests.values():
            reached_approval = request.activated_at is not None or request.state in (
                RequestState.APPROVED,
                RequestState.ACTIVE,
                RequestState.FAILED,
            )
            if not reached_approval or request.break_glass:
                continue
            if request.activated_at is not None:
                event("a request reached ACTIVE")
            approvers = set(request.approvers_so_far)
            rule = POLICY.resource(request.resource)
            assert request.requester_id not in approvers
            assert approvers <= self.eligible_approvers(request)
            assert len(approvers) >= rule.approvals_required
            assert len(approvers) == len(request.approvers_so_far)

    @invariant()
    def terminal_states_never_change(self) -> None:
        for request in self.store.state.requests.values():
            seen = self.terminal_seen.get(request.id)
            if seen is not None:
                assert request.state is seen
            elif request.state.is_terminal:
                self.terminal_seen[request.id] = request.state

    @invariant()
    def access_never_outlives_its_incident(self) -> None:
        for grant in self.store.state.grants.values():
            incident = self.store.state.incidents[grant.incident_id]
            request = self.store.state.requests[grant.request_id]
            if incident.closed_at is not None:
                assert grant.status in (
                    GrantStatus.REVOKING,
                    GrantStatus.REVOKED,
                    GrantStatus.FAILED,
                )
                if grant.status is not GrantStatus.FAILED:
                    assert grant.revoke_requested_at is not None
                    assert grant.revoke_requested_at <= incident.closed_at
                if request.ends_at is not None:
                    assert request.ends_at <= incident.closed_at
                assert request.state.is_terminal

    @invariant()
    def durations_within_max_ttl(self) -> None:
        for request in self.store.state.requests.values():
            max_ttl = POLICY.resource(request.resource).max_ttl
            assert timedelta(0) < request.duration <= max_ttl
            if request.activated_at and request.ends_at:
                assert request.ends_at - request.activated_at <= max_ttl
        for grant in self.store.state.grants.values():
            vault_end = self.broker.live.get(grant.lease_id or "")
            if vault_end is not None:
                assert vault_end - grant.created_at <= POLICY.resource(grant.resource).max_ttl

    def eligible_approvers(self, request: AccessRequest) -> frozenset[str]:
        """The resource's approvers, and the incident's commander where the resource names
        `incident_commander` (no hand-off happens in this machine: the opener stays commander)."""
        rule = POLICY.resource(request.resource)
        commander = self.store.state.incidents[request.incident_id].commander_id
        return POLICY.approvers(rule) | ({commander} if rule.commander_approves else set())

    @invariant()
    def break_glass_is_capped_and_reviewed_only_by_approvers(self) -> None:
        for request in self.store.state.requests.values():
            if not request.break_glass:
                continue
            rule = POLICY.resource(request.resource)
            assert rule.break_glass is not None
            assert request.duration <= rule.break_glass.max_ttl
            reviewers = {d.approver_id for d in request.decisions}
            assert request.requester_id not in reviewers
            assert reviewers <= self.eligible_approvers(request)
            if request.reviewed_at is not None:
                event("break-glass reviewed")
                assert len(set(request.approvers_so_far)) >= request.approvals_required

    @invariant()
    def extensions_stay_in_place_and_within_max_ttl(self) -> None:
        for request in self.store.state.requests.values():
            open_ones = [e for e in request.extensions if e.state.is_open]
            assert len(open_ones) <= 1
            if open_ones:
                assert request.state is RequestState.ACTIVE
            for extension in request.extensions:
                if extension.state is ExtensionState.APPLIED:
                    event("extension applied")
                    assert extension.requested_by == request.requester_id
                    assert request.requester_id not in extension.approvers_so_far
                    assert request.activated_at is not None and extension.new_ends_at is not None
                    assert (
                        extension.new_ends_at - request.activated_at
                        <= POLICY.resource(request.resource).max_ttl
                    )
            grants = [g for g in self.store.state.grants.values() if g.request_id == request.id]
            live = [g for g in grants if g.status is not GrantStatus.FAILED]
            assert len(live) <= 1  # an extension never adds a second credential

    @invariant()
    def request_and_grant_never_disagree(self) -> None:
        """One lifecycle: the request says whether access is on and when it ends; its grant
        (the credential) is issued exactly while it is active, and asked to be revoked from
        the moment it ends; Vault's own end is the request's."""
        for request in self.store.state.requests.values():
            grants = [g for g in self.store.state.grants.values() if g.request_id == request.id]
            live = [g for g in grants if g.status is not GrantStatus.FAILED]
            grant = live[0] if live else None
            state = request.state
            if state is RequestState.PENDING:
                assert grants == []
            elif state is RequestState.ACTIVE:
                event("active access and its credential")
                assert grant is not None and grant.status is GrantStatus.ACTIVE
                assert request.ends_at is not None and request.ended_at is None
                vault_end = self.broker.live.get(grant.lease_id or "")
                assert vault_end is None or vault_end == request.ends_at
            elif state is RequestState.APPROVED or state is RequestState.FAILED:
                assert grant is None or grant.status is GrantStatus.ISSUING
                assert state is RequestState.APPROVED or grant is None
            elif grant is not None:
                # Ended (expired, revoked, cancelled...): a credential is no longer wanted.
                assert grant.status in (GrantStatus.REVOKING, GrantStatus.REVOKED)
                assert grant.revoke_requested_at is not None and request.ended_at is not None
                if state is RequestState.EXPIRED:
                    event("expired access and its credential")
                    assert request.ends_at == request.ended_at <= grant.revoke_requested_at
                else:
                    assert grant.revoke_requested_at >= request.ended_at
            if grant is not None and grant.status is GrantStatus.ACTIVE:
                assert state is RequestState.ACTIVE

    @invariant()
    def one_credential_per_request(self) -> None:
        assert len(self.broker.issued) == len(set(self.broker.issued))

    @invariant()
    def audit_chain_verifies(self) -> None:
        assert verify_chain(self.store.state.events).ok

    @invariant()
    def every_transition_is_audited(self) -> None:
        actions = {(e.entry.request_id, e.entry.action) for e in self.store.state.events}
        for request in self.store.state.requests.values():
            if request.state.is_terminal and request.state is not RequestState.DENIED:
                assert (request.id, f"request.{request.state.value}") in actions
            if request.state is RequestState.DENIED:
                assert (request.id, Action.REQUEST_DENIED.value) in actions


LifecycleMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLifecycle = LifecycleMachine.TestCase
