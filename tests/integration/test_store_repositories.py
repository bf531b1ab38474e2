"""Repositories round-trip every domain field and keep the unit of work's transaction rules."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.domain.access import AccessRequest, Decision, RequestState, Verdict
from bot.domain.errors import AlreadyDone, NotFound
from bot.domain.grant import GrantStatus
from bot.domain.incident import IncidentStatus, Severity
from bot.domain.ports import AccessEnd, IssuedCredential, UnitOfWorkFactory
from bot.store import SqlUnitOfWorkFactory

from . import builders
from .builders import T0


def test_the_factory_is_a_unit_of_work_factory(uow_factory: SqlUnitOfWorkFactory) -> None:
    factory: UnitOfWorkFactory = uow_factory
    with factory() as uow:
        assert uow.incidents.get("INC-nothing") is None


def test_incident_round_trips_every_field(uow_factory: SqlUnitOfWorkFactory) -> None:
    open_one, closed_one = builders.incident(1), builders.closed_incident(2)
    with uow_factory() as uow:
        uow.incidents.add(open_one)
        uow.incidents.add(closed_one)
        uow.commit()

    with uow_factory() as uow:
        assert uow.incidents.get(open_one.id) == open_one
        assert uow.incidents.get(closed_one.id) == closed_one
        assert uow.incidents.get_by_channel(closed_one.channel_id) == closed_one
        assert uow.incidents.get("INC-missing") is None
        assert uow.incidents.get_by_channel("C-missing") is None
        assert [i.id for i in uow.incidents.list_open()] == [open_one.id]
        loaded = uow.incidents.get(open_one.id)
        assert loaded is not None
        assert loaded.opened_at.tzinfo is UTC
        assert loaded.opened_at == open_one.opened_at


def test_incident_save_writes_the_changes(uow_factory: SqlUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.incidents.add(builders.incident())
        uow.commit()

    with uow_factory() as uow:
        incident = uow.incidents.get(builders.incident().id, for_update=True)
        assert incident is not None
        incident.hand_off(to_user="U0NEXT", by_user="U0COMMAND", is_admin=False)
        incident.severity = Severity.SEV1
        incident.close(by_user="U0NEXT", resolution="fixed", is_admin=False, now=T0)
        uow.incidents.save(incident)
        uow.commit()

    with uow_factory() as uow:
        assert uow.incidents.get(incident.id) == incident
        assert uow.incidents.list_open() == []
        assert incident.status is IncidentStatus.CLOSED


def test_saving_an_incident_never_added_is_refused(uow_factory: SqlUnitOfWorkFactory) -> None:
    with uow_factory() as uow, pytest.raises(NotFound):
        uow.incidents.save(builders.incident())


def test_channel_ids_are_unique(uow_factory: SqlUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.incidents.add(builders.incident(1))
        with pytest.raises(IntegrityError):
            uow.incidents.add(builders.incident(2, channel_id=builders.incident(1).channel_id))


def test_access_request_round_trips_every_field_with_its_decisions(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    incident = builders.incident()
    pending = builders.access_request(incident.id, 1)
    ended = builders.ended_request(incident.id, 2)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.requests.add(pending)
        uow.requests.add(ended)
        uow.commit()

    with uow_factory() as uow:
        assert uow.requests.get(pending.id) == pending
        loaded = uow.requests.get(ended.id, for_update=True)
        assert loaded == ended
        assert loaded is not None
        assert isinstance(loaded.eligible_approvers, frozenset)
        assert loaded.duration == timedelta(hours=2, minutes=30)
        assert all(d.decided_at.tzinfo is UTC for d in loaded.decisions)
        assert uow.requests.get("R-missing") is None


def test_access_request_lists_filter_by_state(uow_factory: SqlUnitOfWorkFactory) -> None:
    incident, other = builders.incident(1), builders.incident(2)
    pending = builders.access_request(incident.id, 1)
    ended = builders.ended_request(incident.id, 2)
    elsewhere = builders.access_request(other.id, 3)
    with uow_factory() as uow:
        for each in (incident, other):
            uow.incidents.add(each)
        for request in (pending, ended, elsewhere):
            uow.requests.add(request)
        uow.commit()

    with uow_factory() as uow:
        assert uow.requests.list_for_incident(incident.id) == [pending, ended]
        assert uow.requests.list_for_incident(incident.id, states=[RequestState.PENDING]) == [
            pending
        ]
        assert uow.requests.list_for_incident(incident.id, states=[]) == []
        assert uow.requests.list_for_incident(other.id) == [elsewhere]


def test_decisions_and_save_follow_the_lifecycle(uow_factory: SqlUnitOfWorkFactory) -> None:
    incident = builders.incident()
    request = builders.access_request(incident.id)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.requests.add(request)
        uow.commit()

    for approver, minute in (("U0ALICE", 5), ("U0BOB", 6)):
        with uow_factory() as uow:
            loaded = uow.requests.get(request.id, for_update=True)
            assert loaded is not None
            now = T0 + timedelta(minutes=minute)
            decision = loaded.decide(approver_id=approver, verdict=Verdict.APPROVE, now=now)
            uow.requests.add_decision(decision)
            uow.requests.save(loaded)
            uow.commit()

    with uow_factory() as uow:
        approved = uow.requests.get(request.id)
        assert approved is not None
        assert approved.state is RequestState.APPROVED
        assert approved.approvers_so_far == ["U0ALICE", "U0BOB"]
        assert approved.state_changed_at == T0 + timedelta(minutes=6)


def test_a_duplicate_decision_is_already_done_and_the_transaction_goes_on(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    incident = builders.incident()
    request = builders.access_request(incident.id)
    first = Decision(request.id, "U0ALICE", Verdict.APPROVE, T0)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.requests.add(request)
        uow.requests.add_decision(first)
        uow.commit()

    with uow_factory() as uow:
        with pytest.raises(AlreadyDone, match=f"You already decided request {request.id}"):
            uow.requests.add_decision(replace(first, verdict=Verdict.DENY, reason="double click"))
        uow.requests.add_decision(Decision(request.id, "U0BOB", Verdict.APPROVE, T0))
        uow.commit()

    with uow_factory() as uow:
        loaded = uow.requests.get(request.id)
        assert loaded is not None
        assert loaded.decisions == [first, Decision(request.id, "U0BOB", Verdict.APPROVE, T0)]


def test_a_decision_for_an_unknown_request_is_not_mistaken_for_a_duplicate(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    with uow_factory() as uow, pytest.raises(IntegrityError):
        uow.requests.add_decision(Decision("R-missing", "U0ALICE", Verdict.APPROVE, T0))


def test_grant_round_trips_every_field(uow_factory: SqlUnitOfWorkFactory) -> None:
    incident = builders.incident()
    first, second = builders.access_request(incident.id, 1), builders.ended_request(incident.id, 2)
    issuing = builders.grant(first, 1)
    revoked = replace(builders.revoked_grant(second), id="G-000002")
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.requests.add(first)
        uow.requests.add(second)
        uow.grants.add(issuing)
        uow.grants.add(revoked)
        uow.commit()

    with uow_factory() as uow:
        assert uow.grants.get(issuing.id) == issuing
        assert uow.grants.get(revoked.id, for_update=True) == revoked
        assert uow.grants.get_for_request(second.id, for_update=True) == revoked
        assert uow.grants.get_for_request("R-missing") is None
        assert uow.grants.list_for_incident(incident.id) == [issuing, revoked]
        assert uow.grants.list_for_incident(incident.id, statuses=[GrantStatus.REVOKED]) == [
            revoked
        ]


def test_grant_save_writes_the_changes(uow_factory: SqlUnitOfWorkFactory) -> None:
    incident = builders.incident()
    request = builders.access_request(incident.id)
    grant = builders.grant(request)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.requests.add(request)
        uow.grants.add(grant)
        uow.commit()

    with uow_factory() as uow:
        loaded = uow.grants.get(grant.id, for_update=True)
        assert loaded is not None
        issued = IssuedCredential(
            lease_id="lease/1",
            token_accessor="acc-1",
            wrapping_accessor="wrap-1",
            expires_at=T0 + timedelta(hours=1),
        )
        loaded.mark_issued(credential=issued, now=T0)
        loaded.request_revocation(now=T0 + timedelta(minutes=30))
        loaded.revocation_failed(error="timeout", now=T0 + timedelta(hours=1))
        uow.grants.save(loaded)
        uow.commit()

    with uow_factory() as uow:
        assert uow.grants.get(grant.id) == loaded


def test_a_second_grant_for_one_request_is_refused(uow_factory: SqlUnitOfWorkFactory) -> None:
    incident = builders.incident()
    request = builders.access_request(incident.id)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.requests.add(request)
        uow.grants.add(builders.grant(request, 1))
        uow.commit()

    with uow_factory() as uow:
        with pytest.raises(AlreadyDone, match="already has a credential") as refused:
            uow.grants.add(builders.grant(request, 2))
        assert isinstance(refused.value.__cause__, IntegrityError)

    with uow_factory() as uow:
        assert uow.grants.get("G-000002") is None


def test_leaving_without_commit_rolls_back(uow_factory: SqlUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.incidents.add(builders.incident())

    with uow_factory() as uow:
        assert uow.incidents.get(builders.incident().id) is None


def test_an_exception_rolls_back(uow_factory: SqlUnitOfWorkFactory) -> None:
    def add_then_fail() -> None:
        with uow_factory() as uow:
            uow.incidents.add(builders.incident())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        add_then_fail()

    with uow_factory() as uow:
        assert uow.incidents.get(builders.incident().id) is None


def test_explicit_rollback_discards_and_commit_keeps(uow_factory: SqlUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.incidents.add(builders.incident(1))
        uow.rollback()
        uow.incidents.add(builders.incident(2))
        uow.commit()

    with uow_factory() as uow:
        assert uow.incidents.get(builders.incident(1).id) is None
        assert uow.incidents.get(builders.incident(2).id) == builders.incident(2)


def test_for_update_holds_the_row_lock_until_the_end(
    uow_factory: SqlUnitOfWorkFactory, engine: Engine, is_postgres: bool
) -> None:
    with uow_factory() as uow:
        uow.incidents.add(builders.incident())
        uow.commit()

    with uow_factory() as uow:
        assert uow.incidents.get(builders.incident().id, for_update=True) is not None
        if is_postgres:
            with engine.connect() as other, pytest.raises(DBAPIError, match="could not obtain"):
                other.execute(
                    text("SELECT id FROM incidents WHERE id = :id FOR UPDATE NOWAIT"),
                    {"id": builders.incident().id},
                )


def test_due_pending_requests_are_the_old_pending_ones(uow_factory: SqlUnitOfWorkFactory) -> None:
    incident = builders.incident()
    old = builders.access_request(incident.id, 1)
    older = builders.access_request(incident.id, 2, requested_at=T0 - timedelta(hours=1))
    recent = builders.access_request(incident.id, 3, requested_at=T0 + timedelta(hours=1))
    decided = builders.ended_request(incident.id, 4)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        for request in (old, older, recent, decided):
            uow.requests.add(request)
        uow.commit()

    with uow_factory() as uow:
        requests = uow.requests
        cutoff = T0 + timedelta(minutes=30)
        assert requests.list_due_pending(cutoff, limit=10) == [older, old]
        assert requests.list_due_pending(cutoff, limit=1) == [older]
        assert requests.list_due_pending(older.requested_at, limit=10) == [older]


def test_due_grants_and_grants_by_status(uow_factory: SqlUnitOfWorkFactory) -> None:
    """Active access is due by its request's end, the one record of when it ends."""
    incident = builders.incident()

    def active(number: int, ends_at: datetime, **changes: Any) -> AccessRequest:
        return builders.access_request(
            incident.id, number, **{"state": RequestState.ACTIVE, "ends_at": ends_at, **changes}
        )

    requests = [
        active(1, T0),
        active(2, T0 - timedelta(minutes=5)),
        active(3, T0 + timedelta(1)),
        active(4, T0, state=RequestState.REVOKED),
    ]
    soon, sooner, later = (
        builders.grant(requests[n], n + 1, status=GrantStatus.ACTIVE) for n in range(3)
    )
    revoking = builders.grant(requests[3], 4, status=GrantStatus.REVOKING)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        for request in requests:
            uow.requests.add(request)
        for grant in (soon, sooner, later, revoking):
            uow.grants.add(grant)
        uow.commit()

    with uow_factory() as uow:
        grants = uow.grants
        assert grants.list_due(T0, limit=10) == [
            AccessEnd(sooner.request_id, T0 - timedelta(minutes=5)),
            AccessEnd(soon.request_id, T0),
        ]
        assert grants.list_due(T0, limit=1) == [
            AccessEnd(sooner.request_id, T0 - timedelta(minutes=5))
        ]
        assert grants.list_active_ending(T0 + timedelta(1), limit=10) == [
            AccessEnd(sooner.request_id, T0 - timedelta(minutes=5)),
            AccessEnd(soon.request_id, T0),
            AccessEnd(later.request_id, T0 + timedelta(1)),
        ]
        assert grants.list_by_status([GrantStatus.REVOKING], limit=10) == [revoking]
        assert grants.list_by_status([GrantStatus.ACTIVE, GrantStatus.REVOKING], limit=10) == [
            soon,
            sooner,
            later,
            revoking,
        ]


def test_a_failed_attempt_leaves_room_for_one_more_live_grant(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    incident = builders.incident()
    request = builders.access_request(incident.id)
    first, second, third = (builders.grant(request, n) for n in (1, 2, 3))
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.requests.add(request)
        uow.grants.add(first)
        uow.commit()
    with uow_factory() as uow:
        failed = uow.grants.get(first.id, for_update=True)
        assert failed is not None
        failed.mark_failed(error="Vault is unavailable")
        uow.grants.save(failed)
        uow.grants.add(second)
        with pytest.raises(AlreadyDone):
            uow.grants.add(third)
        uow.commit()
    with uow_factory() as uow:
        live = uow.grants.get_for_request(request.id)
        attempts = uow.grants.list_for_request(request.id)
    assert live is not None and live.id == second.id
    assert [g.id for g in attempts] == [first.id, second.id]


def test_incident_token_accessors_round_trip(uow_factory: SqlUnitOfWorkFactory) -> None:
    one, two = builders.incident(1), builders.incident(2)
    with uow_factory() as uow:
        uow.incidents.add(one)
        uow.incidents.add(two)
        uow.vault_tokens.add(incident_id=one.id, accessor="acc-a", now=T0)
        uow.vault_tokens.add(incident_id=one.id, accessor="acc-b", now=T0)
        uow.vault_tokens.add(incident_id=two.id, accessor="acc-c", now=T0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.vault_tokens.list_unrevoked(one.id) == [(one.id, "acc-a"), (one.id, "acc-b")]
        uow.vault_tokens.mark_revoked(["acc-a", "acc-b"], at=T0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.vault_tokens.list_unrevoked() == [(two.id, "acc-c")]


def test_cards_are_kept_beside_their_records_and_survive_saves(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    incident = builders.incident(1)
    request = builders.access_request(incident.id, 1)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.requests.add(request)
        assert uow.cards.of_request(request.id) is None
        uow.cards.attach_to_incident(incident.id, "1732345678.000100")
        uow.cards.attach_to_request(request.id, "1732345679.000200")
        uow.commit()
    with uow_factory() as uow:
        uow.requests.save(request)  # saving the record leaves its card alone
        uow.incidents.save(incident)
        uow.commit()
    with uow_factory() as uow:
        assert uow.cards.of_incident(incident.id) == "1732345678.000100"
        assert uow.cards.of_request(request.id) == "1732345679.000200"
