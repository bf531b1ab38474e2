"""Extending access in place and break-glass, on in-memory fakes."""

import dataclasses
import threading
from datetime import timedelta

import pytest

from bot.domain.access import RequestState, Verdict
from bot.domain.audit import Action, verify_chain
from bot.domain.errors import (
    AlreadyDone,
    CredentialDenied,
    CredentialUnavailable,
    InvalidState,
    NotAllowed,
)
from bot.domain.extension import ExtensionState
from bot.domain.grant import GrantStatus
from bot.domain.rules import AccessPolicy
from bot.domain.wording import Person
from bot.services import access, extensions, issuing
from bot.services.common import claim_key
from bot.services.sweeps import retry_revocations
from tests.unit.test_services import POLICY, World

REQUESTER, LEAD, OTHER_LEAD = "U0ONCALL2", "U0LEAD1", "U0LEAD2"


@pytest.fixture
def world() -> World:
    return World()


def active(world: World, resource: str = "inference-logs-ro", duration: str = "1h") -> str:
    request_id = world.request(resource, duration=duration)
    world.decide(request_id, LEAD)
    world.issue(request_id)
    assert world.store.state.requests.get(request_id).state is RequestState.ACTIVE  # type: ignore[union-attr]
    return request_id


def ask(
    world: World, request_id: str, duration: str = "30m", by: str = REQUESTER
) -> extensions.ExtensionResult:
    return extensions.request_extension(
        uow=world.store,
        policy=POLICY,
        request_id=request_id,
        by_user=by,
        duration=duration,
        reason="still digging",
        now=world.now,
    )


def decide(
    world: World,
    request_id: str,
    approver: str = LEAD,
    verdict: Verdict = Verdict.APPROVE,
    reason: str | None = None,
) -> extensions.ExtensionResult:
    return extensions.decide_extension(
        uow=world.store,
        request_id=request_id,
        approver_id=approver,
        verdict=verdict,
        reason=reason,
        now=world.now,
    )


def apply(world: World, request_id: str, policy: AccessPolicy = POLICY) -> None:
    renew(world, request_id, policy)


def renew(
    world: World, request_id: str, policy: AccessPolicy = POLICY
) -> extensions.ExtensionResult | None:
    return extensions.apply_extension(
        uow=world.store,
        policy=policy,
        broker=world.broker,
        request_id=request_id,
        clock=world.clock,
    )


# -- extend ----------------------------------------------------------------------------------


def test_an_approved_extension_renews_the_same_credential(world: World) -> None:
    request_id = active(world)
    before = world.store.state.requests.get(request_id)
    assert before is not None and before.ends_at is not None
    world.now += timedelta(minutes=20)
    ask(world, request_id, "30m")
    result = decide(world, request_id)
    assert result.extension.state is ExtensionState.APPROVED
    apply(world, request_id)

    after = world.store.state.requests.get(request_id)
    assert after is not None and after.ends_at == before.ends_at + timedelta(minutes=30)
    grants = [g for g in world.store.state.grants.values() if g.request_id == request_id]
    assert len(grants) == 1 and grants[0].status is GrantStatus.ACTIVE  # no second grant
    assert world.broker.live[grants[0].lease_id or ""] == after.ends_at  # Vault's end too
    assert world.broker.issued == [request_id]
    assert world.broker.renewed == [(grants[0].id, after.ends_at)]
    assert after.extensions[0].state is ExtensionState.APPLIED
    actions = world.actions()
    for action in (
        Action.EXTENSION_REQUESTED,
        Action.EXTENSION_DECIDED,
        Action.EXTENSION_APPROVED,
        Action.EXTENSION_APPLIED,
    ):
        assert action in actions
    assert verify_chain(world.store.state.events).ok


def test_a_worker_waits_for_the_renewal_claim_and_vault_is_asked_once(world: World) -> None:
    """A worker that finds the renewal claim held waits for it instead of giving up (the holder
    may have read the extension before its approval committed), then renews; a later call
    finds it applied and asks Vault nothing."""
    request_id = active(world)
    ask(world, request_id, "30m")
    decide(world, request_id)
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(renew(world, request_id)))
    with world.store.claim(claim_key("renew", request_id)) as theirs:
        assert theirs
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive() and world.broker.renewed == []  # waiting, not skipping
    waiter.join(5)
    assert len(results) == 1 and results[0] is not None
    assert len(world.broker.renewed) == 1
    assert renew(world, request_id) is None  # applied already: Vault is not asked again
    assert len(world.broker.renewed) == 1


def test_extension_never_passes_max_ttl_from_the_first_issue(world: World) -> None:
    request_id = active(world, duration="3h")  # inference-logs-ro: max 4h
    with pytest.raises(NotAllowed, match="at most 1h"):
        ask(world, request_id, "2h")
    ask(world, request_id, "1h")
    decide(world, request_id)
    apply(world, request_id)
    with pytest.raises(NotAllowed, match="already ends at its maximum"):
        ask(world, request_id, "15m")


def test_who_may_ask_and_decide_an_extension(world: World) -> None:
    request_id = active(world)
    with pytest.raises(NotAllowed, match="Only U0ONCALL2 can extend") as refused:
        ask(world, request_id, by=LEAD)
    assert Person("U0ONCALL2") in refused.value.wording.parts
    ask(world, request_id)
    with pytest.raises(AlreadyDone, match="already has an extension waiting"):
        ask(world, request_id)
    with pytest.raises(NotAllowed, match="your own access"):
        decide(world, request_id, approver=REQUESTER)
    with pytest.raises(NotAllowed, match="not an approver"):
        decide(world, request_id, approver="U0SEC1")
    decide(world, request_id)
    with pytest.raises(AlreadyDone):
        decide(world, request_id)


def test_only_active_access_can_be_extended(world: World) -> None:
    pending = world.request()
    with pytest.raises(InvalidState, match="only active access"):
        ask(world, pending)


def test_a_deny_leaves_the_end_where_it_was(world: World) -> None:
    request_id = active(world)
    ends = world.store.state.requests.get(request_id).ends_at  # type: ignore[union-attr]
    ask(world, request_id)
    result = decide(world, request_id, verdict=Verdict.DENY, reason="close it out")
    assert result.extension.state is ExtensionState.DENIED
    apply(world, request_id)
    assert world.store.state.requests.get(request_id).ends_at == ends  # type: ignore[union-attr]
    assert world.broker.renewed == []
    ask(world, request_id)  # a denied ask does not block a new one


def test_policy_may_require_more_approvals_for_an_extension(world: World) -> None:
    rule = dataclasses.replace(
        POLICY.resources["inference-logs-ro"], extension_approvals_required=2
    )
    policy = dataclasses.replace(POLICY, resources={**POLICY.resources, rule.name: rule})
    request_id = active(world)
    extensions.request_extension(
        uow=world.store,
        policy=policy,
        request_id=request_id,
        by_user=REQUESTER,
        duration="30m",
        reason=None,
        now=world.now,
    )
    assert decide(world, request_id).extension.state is ExtensionState.PENDING
    assert decide(world, request_id, OTHER_LEAD).extension.state is ExtensionState.APPROVED


def test_vault_down_keeps_the_extension_approved_until_the_sweep_applies_it(world: World) -> None:
    request_id = active(world)
    ends = world.store.state.requests.get(request_id).ends_at  # type: ignore[union-attr]
    ask(world, request_id)
    decide(world, request_id)
    world.broker.fail_renew = CredentialUnavailable("Vault is unavailable (connection refused).")
    result = extensions.apply_extension(
        uow=world.store,
        policy=POLICY,
        broker=world.broker,
        request_id=request_id,
        clock=world.clock,
    )
    assert result is not None and result.retrying
    stored = world.store.state.requests.get(request_id)
    assert stored is not None and stored.ends_at == ends
    assert stored.extensions[0].state is ExtensionState.APPROVED

    world.broker.fail_renew = None
    applied = extensions.retry_extensions(
        uow=world.store, policy=POLICY, broker=world.broker, clock=world.clock
    )
    assert [r.extension.state for r in applied] == [ExtensionState.APPLIED]
    assert world.store.state.requests.get(request_id).ends_at == ends + timedelta(minutes=30)  # type: ignore[operator, union-attr]
    assert (
        extensions.retry_extensions(
            uow=world.store, policy=POLICY, broker=world.broker, clock=world.clock
        )
        == []
    )


@pytest.mark.parametrize("refusal", ["denied", "capped"])
def test_vault_refusing_the_renewal_fails_the_extension_not_the_access(
    world: World, refusal: str
) -> None:
    request_id = active(world)
    ends = world.store.state.requests.get(request_id).ends_at  # type: ignore[union-attr]
    assert ends is not None
    ask(world, request_id)
    decide(world, request_id)
    if refusal == "denied":
        world.broker.fail_renew = CredentialDenied("permission denied on auth/token/renew-accessor")
    else:
        world.broker.renew_cap = ends  # the token's explicit max TTL
    apply(world, request_id)
    stored = world.store.state.requests.get(request_id)
    assert stored is not None and stored.state is RequestState.ACTIVE and stored.ends_at == ends
    assert stored.extensions[0].state is ExtensionState.FAILED
    assert Action.EXTENSION_FAILED in world.actions()


def test_access_ending_cancels_a_waiting_extension(world: World) -> None:
    request_id = active(world, duration="1h")
    ask(world, request_id)
    world.now += timedelta(hours=1)
    access.expire_access(
        uow=world.store, broker=world.broker, request_id=request_id, clock=world.clock
    )
    stored = world.store.state.requests.get(request_id)
    assert stored is not None and stored.extensions[0].state is ExtensionState.CANCELLED
    with pytest.raises(InvalidState, match="no extension waiting"):
        decide(world, request_id)


def test_the_summary_shows_extensions(world: World) -> None:
    request_id = active(world)
    ask(world, request_id)
    decide(world, request_id)
    apply(world, request_id)
    summary = world.close().summary
    line = next(r for r in summary.requests if r.request_id == request_id)
    assert line.times_extended == 1
    assert "Extended at" in summary.to_markdown() and "approved by U0LEAD1" in summary.to_markdown()


# -- break-glass -----------------------------------------------------------------------------


def break_glass(world: World, resource: str = "serving-cluster-exec", duration: str = "1h") -> str:
    return access.request_access(
        uow=world.store,
        policy=POLICY,
        channel_id="C0INCIDENT",
        requester_id=REQUESTER,
        resource=resource,
        duration=duration,
        reason="pods crash-looping, nobody answers",
        now=world.now,
        break_glass=True,
    ).id


def test_break_glass_issues_at_once_with_a_capped_ttl(world: World) -> None:
    request_id = break_glass(world)
    filed = world.store.state.requests.get(request_id)
    assert filed is not None and filed.state is RequestState.APPROVED and filed.break_glass
    assert filed.duration == timedelta(minutes=15)  # break_glass.max_ttl, not the 1h asked
    world.issue(request_id)
    issued = world.store.state.requests.get(request_id)
    assert issued is not None and issued.state is RequestState.ACTIVE
    assert issued.ends_at == world.now + timedelta(minutes=15)
    assert Action.BREAK_GLASS_USED in world.actions()
    assert issued.awaiting_review


def test_break_glass_only_where_the_policy_allows_it(world: World) -> None:
    with pytest.raises(NotAllowed, match="has no break-glass"):
        break_glass(world, "inference-logs-ro")
    assert world.store.state.requests == {}


def test_a_review_confirms_break_glass(world: World) -> None:
    request_id = break_glass(world)
    world.issue(request_id)
    with pytest.raises(NotAllowed, match="your own"):
        world.decide(request_id, REQUESTER)
    world.decide(request_id, LEAD)
    reviewed = world.store.state.requests.get(request_id)
    assert reviewed is not None and reviewed.reviewed_at == world.now
    assert reviewed.state is RequestState.ACTIVE  # a confirmation leaves access alone
    assert Action.BREAK_GLASS_REVIEWED in world.actions()
    with pytest.raises(InvalidState, match="nothing to review"):
        world.decide(request_id, OTHER_LEAD)
    assert world.close().summary.unreviewed_break_glass == []


def test_a_deny_after_the_fact_revokes_break_glass_at_once(world: World) -> None:
    request_id = break_glass(world)
    world.issue(request_id)
    result = world.decide(request_id, LEAD, Verdict.DENY, reason="not justified")
    assert result.revoke_grant_id is not None
    stored = world.store.state.requests.get(request_id)
    assert stored is not None and stored.state is RequestState.REVOKED
    assert "break-glass denied by U0LEAD1: not justified" in (stored.end_reason or "")
    grant = world.store.state.grants.get(result.revoke_grant_id)
    assert grant is not None and grant.status is GrantStatus.REVOKING
    issuing.revoke_grant(uow=world.store, broker=world.broker, grant_id=grant.id, clock=world.clock)
    assert world.broker.live == {}
    summary = world.close().summary
    assert summary.unreviewed_break_glass == []
    assert "denied after the fact" in summary.to_markdown()


def test_unreviewed_break_glass_is_flagged_in_the_close_summary(world: World) -> None:
    request_id = break_glass(world)
    world.issue(request_id)
    world.now += timedelta(minutes=15)
    access.expire_access(
        uow=world.store, broker=world.broker, request_id=request_id, clock=world.clock
    )
    with pytest.raises(InvalidState, match="nothing to review"):
        world.decide(request_id, LEAD)  # the review window was the access itself
    summary = world.close().summary
    assert [line.request_id for line in summary.unreviewed_break_glass] == [request_id]
    assert "**Unreviewed break-glass:**" in summary.to_markdown()


def test_break_glass_cannot_be_extended(world: World) -> None:
    request_id = break_glass(world)
    world.issue(request_id)
    with pytest.raises(NotAllowed, match="Break-glass access cannot be extended"):
        ask(world, request_id, "5m")


# -- the close report ------------------------------------------------------------------------


def test_the_close_summary_says_what_closing_did_and_what_is_pending(world: World) -> None:
    active(world)
    world.request()  # still pending at close
    world.broker.fail_revoke = True
    summary = world.close().summary
    report = summary.close_report()
    assert "revoked 1 active grant;" in report
    assert "cancelled 1 request not yet issued" in report
    assert "1 revocation not yet confirmed by Vault" in report
    assert "1 incident token not yet revoked" in report
    assert "(s)" not in report
    assert "## What closing did" in summary.to_markdown()


def test_a_clean_close_reports_every_revocation_confirmed(world: World) -> None:
    active(world)
    report = world.close().summary.close_report()
    assert "Vault confirmed every revocation" in report
    assert "incident token" not in report


# -- revocation retries back off ---------------------------------------------------------------


def test_unconfirmed_revocations_are_retried_with_backoff(world: World) -> None:
    request_id = active(world)
    world.broker.fail_revoke = True
    world.close()
    [grant] = [g for g in world.store.state.grants.values() if g.request_id == request_id]
    assert grant.status is GrantStatus.REVOKING and grant.revoke_attempts == 1
    assert grant.revoke_retry_at == world.now + timedelta(seconds=15)

    def sweep_after(seconds: int) -> int:
        world.now += timedelta(seconds=seconds)
        retry_revocations(uow=world.store, broker=world.broker, clock=world.clock)
        return world.store.state.grants[grant.id].revoke_attempts

    assert sweep_after(10) == 1  # not yet: 15 s after the first failure
    assert sweep_after(5) == 2  # now; the next wait is 30 s
    assert sweep_after(29) == 2
    assert sweep_after(1) == 3
    for _ in range(8):
        sweep_after(300)
    waits = world.store.state.grants[grant.id].revoke_retry_at - world.now  # type: ignore[operator]
    assert waits == timedelta(minutes=5)  # capped
    world.broker.fail_revoke = False
    sweep_after(300)
    assert world.store.state.grants[grant.id].status is GrantStatus.REVOKED
