"""Extensions and break-glass on the real store (SQLite and PostgreSQL): races settled by
row locks, and everything read back as it was written."""

import dataclasses
from datetime import timedelta

from bot.domain.access import RequestState, Verdict
from bot.domain.audit import verify_chain
from bot.domain.extension import ExtensionState
from bot.domain.grant import GrantStatus
from bot.services import access, extensions, issuing
from bot.store import SqlUnitOfWorkFactory
from tests.integration.test_services_on_store import (
    POLICY,
    T0,
    all_at_once,
    clock,
    open_and_request,
)
from tests.unit.fakes import FakeBroker

TWO_FOR_EXTENSIONS = dataclasses.replace(
    POLICY,
    resources={
        **POLICY.resources,
        "inference-logs-ro": dataclasses.replace(
            POLICY.resources["inference-logs-ro"], extension_approvals_required=2
        ),
    },
)


def active_request(uow: SqlUnitOfWorkFactory, broker: FakeBroker) -> str:
    _, request_id = open_and_request(uow)
    access.decide_request(
        uow=uow,
        request_id=request_id,
        approver_id="U0LEAD1",
        verdict=Verdict.APPROVE,
        reason=None,
        now=T0,
    )
    issuing.issue_access(uow=uow, policy=POLICY, broker=broker, request_id=request_id, clock=clock)
    return request_id


def test_two_extension_approvals_at_the_same_instant_renew_once(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    broker = FakeBroker()
    request_id = active_request(uow_factory, broker)
    with uow_factory() as tx:
        before = tx.requests.get(request_id)
    assert before is not None and before.ends_at is not None
    extensions.request_extension(
        uow=uow_factory,
        policy=TWO_FOR_EXTENSIONS,
        request_id=request_id,
        by_user="U0ONCALL2",
        duration="30m",
        reason="still rolling back",
        now=clock(),
    )
    approvers = ["U0LEAD2", "U0LEAD3", "U0LEAD2", "U0LEAD3"]

    def approve_then_apply(n: int) -> object:
        extensions.decide_extension(
            uow=uow_factory,
            request_id=request_id,
            approver_id=approvers[n],
            verdict=Verdict.APPROVE,
            reason=None,
            now=clock(),
        )
        return extensions.apply_extension(
            uow=uow_factory,
            policy=TWO_FOR_EXTENSIONS,
            broker=broker,
            request_id=request_id,
            clock=clock,
        )

    all_at_once(4, approve_then_apply)
    with uow_factory() as tx:
        stored = tx.requests.get(request_id)
        grant = tx.grants.get_for_request(request_id)
        assert verify_chain(tx.audit.events()).ok
    assert stored is not None and grant is not None
    [extension] = stored.extensions
    assert extension.state is ExtensionState.APPLIED
    assert sorted(extension.approvers_so_far) == ["U0LEAD2", "U0LEAD3"]
    assert extension.reason == "still rolling back"
    assert extension.previous_ends_at == before.ends_at
    assert stored.ends_at == before.ends_at + timedelta(minutes=30)
    assert grant.status is GrantStatus.ACTIVE
    assert broker.issued == [request_id]
    # Vault may be asked twice by racing replicas; the renewal is idempotent (same end).
    assert {end for _, end in broker.renewed} == {stored.ends_at}


def test_break_glass_round_trips_and_a_deny_revokes(uow_factory: SqlUnitOfWorkFactory) -> None:
    broker = FakeBroker()
    open_and_request(uow_factory)
    filed = access.request_access(
        uow=uow_factory,
        policy=POLICY,
        channel_id="C0INC",
        requester_id="U0ONCALL2",
        resource="serving-cluster-exec",
        duration="1h",
        reason="pods crash-looping",
        now=T0,
        break_glass=True,
    )
    issuing.issue_access(
        uow=uow_factory, policy=POLICY, broker=broker, request_id=filed.id, clock=clock
    )
    with uow_factory() as tx:
        stored = tx.requests.get(filed.id)
        waiting = tx.requests.list_pending_for_approver("U0LEAD1")
    assert stored is not None and stored.break_glass and stored.reviewed_at is None
    assert stored.state is RequestState.ACTIVE and stored.duration == timedelta(minutes=15)
    assert filed.id in [r.id for r in waiting]

    result = access.decide_request(
        uow=uow_factory,
        request_id=filed.id,
        approver_id="U0LEAD1",
        verdict=Verdict.DENY,
        reason="use the normal path",
        now=clock(),
    )
    assert result.revoke_grant_id is not None
    grant = issuing.revoke_grant(
        uow=uow_factory, broker=broker, grant_id=result.revoke_grant_id, clock=clock
    )
    assert grant.status is GrantStatus.REVOKED
    with uow_factory() as tx:
        ended = tx.requests.get(filed.id)
        still_waiting = [r.id for r in tx.requests.list_pending_for_approver("U0LEAD1")]
        assert verify_chain(tx.audit.events()).ok
    assert ended is not None and ended.state is RequestState.REVOKED
    assert filed.id not in still_waiting
