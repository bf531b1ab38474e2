"""The store keeps a request's named approver groups and its auto-approval grounds."""

from bot.domain.access import RequestState
from bot.store import SqlUnitOfWorkFactory

from . import builders
from .builders import T0


def test_approver_labels_and_auto_approval_round_trip(uow_factory: SqlUnitOfWorkFactory) -> None:
    incident = builders.incident()
    labelled = builders.access_request(
        incident.id,
        1,
        approver_labels={
            "@platform-leads": frozenset({"U0ALICE", "U0BOB"}),
            "incident commander": frozenset({"U0COMMAND"}),
        },
    )
    automatic = builders.access_request(incident.id, 2)
    automatic.approve_automatically(because="on call in ml-primary (schedule P7ML0NC)", now=T0)
    plain = builders.access_request(incident.id, 3)
    with uow_factory() as uow:
        uow.incidents.add(incident)
        for request in (labelled, automatic, plain):
            uow.requests.add(request)
        uow.commit()

    with uow_factory() as uow:
        assert uow.requests.get(labelled.id) == labelled
        loaded = uow.requests.get(automatic.id)
        assert loaded == automatic
        assert loaded is not None and loaded.state is RequestState.APPROVED
        assert loaded.auto_approved_because == "on call in ml-primary (schedule P7ML0NC)"
        empty = uow.requests.get(plain.id)
        assert empty is not None and empty.approver_labels == {}
        assert empty.auto_approved_because is None
