"""Reconciliation against a fake Vault inventory: what is ours stays, orphans go."""

from datetime import UTC, datetime, timedelta

from bot.domain.access import RequestState, Verdict
from bot.domain.audit import Action
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import Severity
from bot.domain.ports import LiveToken
from bot.services import access, incidents, issuing
from bot.services.sweeps import ReconcileReport, reconcile_vault
from tests.unit.example_policy import example_policy
from tests.unit.fakes import FakeBroker, MemoryStore

POLICY = example_policy()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class FakeInventory:
    def __init__(self) -> None:
        self.tokens: list[LiveToken] = []
        self.leases: dict[str, list[str]] = {}
        self.revoked: list[str] = []

    def live_tokens(self) -> list[LiveToken]:
        return [t for t in self.tokens if t.accessor not in self.revoked]

    def revoke_token(self, *, accessor: str) -> datetime:
        self.revoked.append(accessor)
        return T0

    def list_leases(self, prefix: str) -> list[str]:
        return [lease for lease in self.leases.get(prefix, []) if lease not in self.revoked]

    def revoke_lease(self, *, lease_id: str) -> datetime:
        self.revoked.append(lease_id)
        return T0


class Scene:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.broker = FakeBroker()
        self.inventory = FakeInventory()
        self.now = T0
        self.incident = incidents.start_incident(
            uow=self.store,
            title="Latency",
            severity=Severity.SEV2,
            opened_by="U0ONCALL1",
            channel_id="C0INC",
            channel_name="inc-20261123-latency",
            now=T0,
        )

    def clock(self) -> datetime:
        return self.now

    def approved(self, resource: str = "inference-logs-ro") -> str:
        request = access.request_access(
            uow=self.store,
            policy=POLICY,
            channel_id="C0INC",
            requester_id="U0ONCALL2",
            resource=resource,
            duration="30m",
            reason="x",
            now=self.now,
        )
        access.decide_request(
            uow=self.store,
            request_id=request.id,
            approver_id="U0LEAD1",
            verdict=Verdict.APPROVE,
            reason=None,
            now=self.now,
        )
        return request.id

    def issued(self) -> str:
        request_id = self.approved()
        issuing.issue_access(
            uow=self.store,
            policy=POLICY,
            broker=self.broker,
            request_id=request_id,
            clock=self.clock,
        )
        return request_id

    def grant_of(self, request_id: str) -> Grant:
        return next(g for g in self.store.state.grants.values() if g.request_id == request_id)

    def reconcile(self) -> ReconcileReport:
        return reconcile_vault(
            uow=self.store, policy=POLICY, inventory=self.inventory, clock=self.clock
        )


def test_an_issue_interrupted_by_a_crash_is_failed_then_issued_again() -> None:
    scene = Scene()
    request_id = scene.approved()
    with scene.store() as tx:  # the process died after recording ISSUING
        tx.grants.add(
            Grant(
                id="G-STUCK",
                request_id=request_id,
                incident_id=scene.incident.id,
                resource="inference-logs-ro",
                requester_id="U0ONCALL2",
                created_at=T0,
            )
        )
        tx.commit()
    scene.inventory.tokens.append(LiveToken("acc-stuck", scene.incident.id, "G-STUCK"))
    scene.now += timedelta(seconds=30)
    with scene.store.claim(f"issue:{request_id}"):  # a live worker is issuing it
        scene.reconcile()
    assert scene.grant_of(request_id).status is GrantStatus.ISSUING
    assert scene.inventory.revoked == []
    scene.reconcile()  # nobody holds it: the issuer died
    assert scene.store.state.grants["G-STUCK"].status is GrantStatus.FAILED
    assert scene.inventory.revoked == ["acc-stuck"]  # and with it any lease it created
    assert scene.store.state.requests[request_id].state is RequestState.APPROVED
    issued = issuing.retry_issues(  # at once: Vault was not the cause
        uow=scene.store, policy=POLICY, broker=scene.broker, clock=scene.clock
    )
    assert issued[0].credential is not None
    assert Action.VAULT_ORPHAN_REVOKED in [e.entry.action for e in scene.store.state.events]


def test_tokens_of_live_grants_and_open_incidents_stay() -> None:
    scene = Scene()
    request_id = scene.issued()
    grant = scene.grant_of(request_id)
    scene.inventory.tokens += [
        LiveToken("acc-grant", scene.incident.id, grant.id),
        LiveToken("acc-incident", scene.incident.id, None),
        LiveToken("acc-unknown-grant", scene.incident.id, "G-NEVER-RECORDED"),
    ]
    report = scene.reconcile()
    assert scene.inventory.revoked == ["acc-unknown-grant"]
    # the open incident's token that never reached our records is recorded, so close revokes it
    assert scene.store.state.vault_tokens["acc-incident"] == (scene.incident.id, None)
    assert report.revoked_tokens == ["acc-unknown-grant"]


def test_after_close_every_leftover_token_and_lease_goes() -> None:
    scene = Scene()
    request_id = scene.issued()
    grant = scene.grant_of(request_id)
    incidents.close_incident(
        uow=scene.store,
        policy=POLICY,
        broker=scene.broker,
        incident_id=scene.incident.id,
        closed_by="U0ONCALL1",
        resolution="done",
        clock=scene.clock,
    )
    scene.inventory.tokens += [
        LiveToken("acc-grant", scene.incident.id, grant.id),
        LiveToken("acc-incident", scene.incident.id, None),
    ]
    scene.inventory.leases["database/creds/inference-logs-ro"] = [
        "database/creds/inference-logs-ro/abc"
    ]
    scene.reconcile()
    assert sorted(scene.inventory.revoked) == [
        "acc-grant",
        "acc-incident",
        "database/creds/inference-logs-ro/abc",
    ]


def test_leases_are_left_alone_while_the_resource_has_live_grants() -> None:
    scene = Scene()
    scene.issued()
    scene.inventory.leases["database/creds/inference-logs-ro"] = [
        "database/creds/inference-logs-ro/wrapped-one"
    ]
    scene.reconcile()
    assert scene.inventory.revoked == []
