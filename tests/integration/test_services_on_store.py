"""The use cases on the real store: one transaction each, races settled by the database."""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import lifecycle, workflows
from bot.domain.access import RequestState, Verdict
from bot.domain.audit import verify_chain
from bot.domain.errors import GatehouseError
from bot.domain.grant import GrantStatus
from bot.domain.incident import Severity
from bot.services import access, incidents, issuing
from bot.slack.views import slack_deps
from bot.store import SqlUnitOfWorkFactory
from tests.unit.example_policy import example_policy
from tests.unit.fakes import FakeBroker, FakeChat

POLICY = example_policy()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def clock() -> datetime:
    return T0 + timedelta(minutes=1)


def open_and_request(
    uow: SqlUnitOfWorkFactory, resource: str = "inference-logs-ro"
) -> tuple[str, str]:
    incident = incidents.start_incident(
        uow=uow,
        title="Latency",
        severity=Severity.SEV1,
        opened_by="U0ONCALL1",
        channel_id="C0INC",
        channel_name="inc-20261123-latency",
        now=T0,
    )
    request = access.request_access(
        uow=uow,
        policy=POLICY,
        channel_id="C0INC",
        requester_id="U0ONCALL2",
        resource=resource,
        duration="1h",
        reason="p99",
        now=T0,
    )
    return incident.id, request.id


def all_at_once(count: int, action: Callable[[int], object]) -> list[object]:
    """Run `action` in `count` threads released together; collect results or errors."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = action(n)
        except GatehouseError as error:
            results[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_full_lifecycle_is_recorded_and_verifies(uow_factory: SqlUnitOfWorkFactory) -> None:
    broker = FakeBroker()
    incident_id, request_id = open_and_request(uow_factory)
    access.decide_request(
        uow=uow_factory,
        request_id=request_id,
        approver_id="U0LEAD1",
        verdict=Verdict.APPROVE,
        reason=None,
        now=T0,
    )
    issued = issuing.issue_access(
        uow=uow_factory, policy=POLICY, broker=broker, request_id=request_id, clock=clock
    )
    assert issued.request.state is RequestState.ACTIVE
    closed = incidents.close_incident(
        uow=uow_factory,
        policy=POLICY,
        broker=broker,
        incident_id=incident_id,
        closed_by="U0ONCALL1",
        resolution="fixed",
        clock=clock,
    )
    assert [g.status for g in closed.revoked] == [GrantStatus.REVOKED]
    assert closed.summary.requests[0].outcome == "revoked"
    with uow_factory() as tx:
        assert verify_chain(tx.audit.events()).ok
        stored = tx.requests.get(request_id)
    assert stored is not None and stored.state is RequestState.REVOKED


def test_concurrent_issue_calls_make_exactly_one_credential(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    broker = FakeBroker()
    _, request_id = open_and_request(uow_factory)
    access.decide_request(
        uow=uow_factory,
        request_id=request_id,
        approver_id="U0LEAD1",
        verdict=Verdict.APPROVE,
        reason=None,
        now=T0,
    )
    results = all_at_once(
        6,
        lambda _: issuing.issue_access(
            uow=uow_factory, policy=POLICY, broker=broker, request_id=request_id, clock=clock
        ),
    )
    credentials = [r for r in results if isinstance(r, issuing.IssueResult) and r.credential]
    assert len(credentials) == 1
    assert broker.issued == [request_id]


def test_two_approvers_at_the_same_instant_both_count_once(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    _, request_id = open_and_request(uow_factory, "feature-store-rw")
    approvers = ["U0LEAD1", "U0SEC1", "U0LEAD1", "U0SEC1"]
    results = all_at_once(
        4,
        lambda n: access.decide_request(
            uow=uow_factory,
            request_id=request_id,
            approver_id=approvers[n],
            verdict=Verdict.APPROVE,
            reason=None,
            now=T0,
        ),
    )
    decided = [r for r in results if isinstance(r, access.DecisionResult)]
    assert len(decided) == 2  # the two repeats were refused, whatever the interleaving
    assert sum(r.approved for r in decided) == 1
    with uow_factory() as tx:
        stored = tx.requests.get(request_id)
        assert verify_chain(tx.audit.events()).ok
    assert stored is not None and stored.state is RequestState.APPROVED
    assert sorted(stored.approvers_so_far) == ["U0LEAD1", "U0SEC1"]


def test_a_failed_use_case_leaves_nothing_behind(uow_factory: SqlUnitOfWorkFactory) -> None:
    open_and_request(uow_factory)
    with uow_factory() as tx:
        before = tx.audit.head()
    with pytest.raises(GatehouseError):
        access.request_access(
            uow=uow_factory,
            policy=POLICY,
            channel_id="C0INC",
            requester_id="U0ONCALL2",
            resource="inference-logs-ro",
            duration="9h",
            reason="too long",
            now=T0,
        )
    with uow_factory() as tx:
        assert tx.audit.head() == before


def test_closing_with_pending_requests_updates_their_cards(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    """The Slack close on the real store: cancelled requests' cards end in place, and no
    transaction waits on another (SQLite takes its write lock at BEGIN)."""
    chat = FakeChat()
    deps = slack_deps(uow=uow_factory, policy=POLICY, broker=FakeBroker(), chat=chat, clock=clock)
    incident = workflows.open_incident(
        deps, title="Latency", severity=Severity.SEV2, opener="U0ONCALL1"
    )
    request_id = workflows.file_request(
        deps,
        channel_id=incident.channel_id,
        user="U0ONCALL2",
        resource="inference-logs-ro",
        duration=None,
        reason="x",
    )
    started = time.monotonic()
    lifecycle.close_incident(
        deps, channel_id=incident.channel_id, user="U0ONCALL1", resolution="fixed"
    )
    assert time.monotonic() - started < 5
    card_updates = [args for method, args in chat.calls if method == "chat.update"]
    closed = "was cancelled: the incident was closed"
    assert any(closed in str(args["blocks"]) for args in card_updates)
    with uow_factory() as tx:
        stored = tx.requests.get(request_id)
    assert stored is not None and stored.state is RequestState.CANCELLED
