"""Incident → request → approvals → a real credential → close, through the services, the store
(SQLite and PostgreSQL), the broker, the Vault emulator and a real PostgreSQL database."""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import psycopg
import pytest
from sqlalchemy import Engine, MetaData, select

from bot.domain.access import RequestState, Verdict
from bot.domain.audit import Action, verify_chain
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import Severity
from bot.domain.rules import Delivery
from bot.services import access, incidents, issuing
from bot.services.issuing import StoredIncidentTokens
from bot.services.sweeps import reconcile_vault
from bot.store import SqlUnitOfWorkFactory
from integrations.vault import VaultCredentialBroker
from tests.integration.vault_support import MlDatabase, make_broker
from tests.tools.vault_setup import SetUpVault
from tests.unit.example_policy import example_policy

POLICY = example_policy()


@dataclass
class World:
    uow: SqlUnitOfWorkFactory
    engine: Engine
    vault: SetUpVault
    database: MlDatabase
    broker: VaultCredentialBroker = field(init=False)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    secrets_seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.broker = make_broker(self.vault, ledger=StoredIncidentTokens(self.uow, self.clock))
        self.incident = incidents.start_incident(
            uow=self.uow,
            title="Ranker latency",
            severity=Severity.SEV1,
            opened_by="U0ONCALL1",
            channel_id="C0INC",
            channel_name="inc-20261123-ranker-latency",
            now=self.now,
        )

    def clock(self) -> datetime:
        return self.now

    def approved(self, resource: str = "inference-logs-ro", duration: str = "30m") -> str:
        request = access.request_access(
            uow=self.uow,
            policy=POLICY,
            channel_id="C0INC",
            requester_id="U0ONCALL2",
            resource=resource,
            duration=duration,
            reason="p99 spikes",
            now=self.now,
        )
        approvers = ["U0LEAD1", "U0SEC1"] if resource == "feature-store-rw" else ["U0LEAD1"]
        for approver in approvers:
            access.decide_request(
                uow=self.uow,
                request_id=request.id,
                approver_id=approver,
                verdict=Verdict.APPROVE,
                reason=None,
                now=self.now,
            )
        return request.id

    def issue(self, request_id: str) -> issuing.IssueResult:
        result = issuing.issue_access(
            uow=self.uow, policy=POLICY, broker=self.broker, request_id=request_id, clock=self.clock
        )
        if result.credential is not None and result.credential.wrapping_token:
            self.secrets_seen.append(result.credential.wrapping_token)
        return result

    def unwrap(self, wrapping_token: str) -> dict[str, Any]:
        """What the requester does: `VAULT_TOKEN=<wrapping token> vault unwrap`."""
        client = hvac.Client(url=self.vault.emulator.url, token=wrapping_token)
        response: dict[str, Any] = client.sys.unwrap()
        data = response.get("data") or {}
        self.secrets_seen += [str(v) for v in data.values()]
        if response.get("auth"):
            self.secrets_seen.append(response["auth"]["client_token"])
        return response

    def close(self) -> incidents.CloseResult:
        return incidents.close_incident(
            uow=self.uow,
            policy=POLICY,
            broker=self.broker,
            incident_id=self.incident.id,
            closed_by="U0ONCALL1",
            resolution="rolled back the ranker",
            clock=self.clock,
        )

    def actions(self) -> list[str]:
        with self.uow() as tx:
            return [event.entry.action for event in tx.audit.events()]


@pytest.fixture
def world(
    uow_factory: SqlUnitOfWorkFactory,
    engine: Engine,
    set_up_vault: SetUpVault,
    ml_database: MlDatabase,
) -> World:
    return World(uow_factory, engine, set_up_vault, ml_database)


def test_request_to_close_with_a_real_database_credential(world: World) -> None:
    request_id = world.approved()
    result = world.issue(request_id)
    assert result.credential is not None and result.credential.wrapping_token
    assert result.request.state is RequestState.ACTIVE
    creds = world.unwrap(result.credential.wrapping_token)["data"]
    world.database.users.append(creds["username"])
    assert world.database.password_matches(creds["username"], creds["password"])
    assert not world.database.password_matches(creds["username"], "a-wrong-password")
    valid_until = world.database.valid_until(creds["username"])
    assert valid_until is not None and valid_until <= world.now + timedelta(hours=1, seconds=10)
    session = world.database.login(creds["username"], creds["password"])
    rows = session.execute("SELECT model, email FROM inference_logs.masked").fetchall()
    assert rows == [("ranker-v7", "***@example.com")]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        session.execute("SELECT email FROM raw.inference_logs")

    with pytest.raises(hvac.exceptions.InvalidRequest, match="wrapping token is not valid"):
        world.unwrap(result.credential.wrapping_token)  # single use

    closed = world.close()
    assert [g.status for g in closed.revoked] == [GrantStatus.REVOKED]
    assert closed.unconfirmed == [] and closed.unconfirmed_tokens == []
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")  # the open session was cut at revocation
    with pytest.raises(psycopg.OperationalError):
        world.database.login(creds["username"], creds["password"])
    assert not world.database.role_exists(creds["username"])
    actions = world.actions()
    assert Action.GRANT_REVOKED in actions and Action.VAULT_TOKENS_REVOKED in actions
    assert closed.summary.requests[0].revocation_confirmed_at is not None
    with world.uow() as tx:
        assert verify_chain(tx.audit.chain_links()).ok


def test_close_revokes_the_token_tree_in_one_request_and_confirms_every_grant(
    world: World,
) -> None:
    issued = [world.issue(world.approved(duration="20m")) for _ in range(3)]
    issued.append(world.issue(world.approved("serving-cluster-exec", duration="20m")))
    accessors = {result.grant.token_accessor for result in issued if result.grant is not None}
    emulator = world.vault.emulator
    before = emulator.requests_by_path()
    closed = world.close()
    sent = emulator.requests_by_path() - before
    assert sent["auth/token/revoke-accessor"] == 1  # the one incident token, nothing else
    assert sent["auth/token/lookup-accessor"] == 1 + len(issued)  # it, then each grant
    assert "sys/leases/revoke" not in sent
    assert len(closed.revoked) == len(issued) and closed.unconfirmed == []
    causes = {r.target: r.cause for r in emulator.revocations()}
    assert {causes[accessor] for accessor in accessors if accessor} == {"parent"}
    actions = world.actions()
    assert actions.count(Action.GRANT_REVOKED) == len(issued)
    assert actions.index(Action.VAULT_TOKENS_REVOKED) < actions.index(Action.GRANT_REVOKED)
    assert all(line.revocation_confirmed_at for line in closed.summary.requests)


def test_a_grant_under_a_token_not_on_record_is_revoked_on_its_own_at_close(
    world: World,
) -> None:
    recorded = world.issue(world.approved())
    unrecorded_broker = make_broker(world.vault)  # another process, its token not on record
    request_id = world.approved()
    kept = issuing.issue_access(
        uow=world.uow, policy=POLICY, broker=unrecorded_broker, request_id=request_id,
        clock=world.clock,
    )  # fmt: skip
    assert kept.grant is not None and kept.grant.token_accessor and recorded.grant is not None
    closed = world.close()
    assert {g.id for g in closed.revoked} == {recorded.grant.id, kept.grant.id}
    causes = {r.target: r.cause for r in world.vault.emulator.revocations()}
    assert causes[recorded.grant.token_accessor or ""] == "parent"  # with the tree
    assert causes[kept.grant.token_accessor] == "request"  # found alive, revoked on its own
    with pytest.raises(hvac.exceptions.InvalidRequest):
        world.vault.root().auth.token.lookup_accessor(kept.grant.token_accessor)


def test_a_token_resource_delivers_a_wrapped_token_with_its_policies(world: World) -> None:
    result = world.issue(world.approved("serving-cluster-exec", duration="20m"))
    assert result.credential is not None and result.credential.wrapping_token
    auth = world.unwrap(result.credential.wrapping_token)["auth"]
    assert "ml-serving-exec" in auth["policies"]
    assert 0 < auth["lease_duration"] <= 20 * 60
    assert auth["accessor"] == result.grant.token_accessor  # type: ignore[union-attr]
    root = world.vault.root()
    meta = root.auth.token.lookup_accessor(auth["accessor"])["data"]["meta"]
    assert meta["gatehouse_request"] == result.request.id
    world.close()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.auth.token.lookup_accessor(auth["accessor"])


def test_the_credential_dies_at_its_end_with_the_bot_stopped(world: World) -> None:
    result = world.issue(world.approved(duration="10m"))
    assert result.credential is not None and result.credential.wrapping_token
    creds = world.unwrap(result.credential.wrapping_token)["data"]
    world.database.users.append(creds["username"])
    session = world.database.login(creds["username"], creds["password"])
    del world.broker  # nothing of Gatehouse runs from here on
    world.vault.emulator.advance_clock(9 * 60)
    assert session.execute("SELECT 1").fetchone() == (1,)
    world.vault.emulator.advance_clock(61)
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    assert not world.database.role_exists(creds["username"])


def test_vault_down_when_issuing_retries_until_it_returns_without_duplicates(
    world: World,
) -> None:
    request_id = world.approved()
    world.vault.emulator.stop()
    failed = world.issue(request_id)
    assert failed.retrying and failed.request.state is RequestState.APPROVED
    assert failed.error is not None and "unavailable" in failed.error
    world.vault.emulator.start()
    world.now += timedelta(seconds=20)
    issued = issuing.retry_issues(
        uow=world.uow, policy=POLICY, broker=world.broker, clock=world.clock
    )
    assert len(issued) == 1 and issued[0].credential is not None
    assert (
        issuing.retry_issues(uow=world.uow, policy=POLICY, broker=world.broker, clock=world.clock)
        == []
    )
    grant_tokens = [t for t in world.broker.live_tokens() if t.grant_id]
    assert len(grant_tokens) == 1


def test_vault_down_at_close_is_reported_then_retried_until_confirmed(world: World) -> None:
    result = world.issue(world.approved())
    assert result.credential is not None and result.credential.wrapping_token
    creds = world.unwrap(result.credential.wrapping_token)["data"]
    world.database.users.append(creds["username"])
    world.vault.emulator.stop()
    closed = world.close()
    assert closed.revoked == [] and len(closed.unconfirmed) == 1
    assert closed.unconfirmed_tokens != []
    assert closed.summary.unconfirmed_revocations[0].request_id == result.request.id
    world.vault.emulator.start()
    grant = issuing.revoke_grant(
        uow=world.uow, broker=world.broker, grant_id=closed.unconfirmed[0].id, clock=world.clock
    )
    assert grant.status is GrantStatus.REVOKED
    assert (
        issuing.revoke_incident_tokens(
            uow=world.uow, broker=world.broker, incident_id=world.incident.id, clock=world.clock
        )
        == []
    )
    assert not world.database.role_exists(creds["username"])


def test_a_crash_between_vault_and_the_database_is_reconciled(world: World) -> None:
    request_id = world.approved()
    with world.uow() as tx:
        request = tx.requests.get(request_id)
    assert request is not None
    # The process issues, then dies before recording the answer: only ISSUING is on record.
    grant = Grant(
        id="G-CRASHED",
        request_id=request_id,
        incident_id=world.incident.id,
        resource="inference-logs-ro",
        requester_id="U0ONCALL2",
        created_at=world.now,
    )
    with world.uow() as tx:
        tx.grants.add(grant)
        tx.commit()
    lost = world.broker.issue(
        grant=grant,
        resource=POLICY.resource("inference-logs-ro"),
        until=world.now + timedelta(minutes=30),
        now=world.now,
    )
    assert lost.wrapping_token is not None
    creds = world.unwrap(lost.wrapping_token)["data"]
    world.database.users.append(creds["username"])
    assert world.database.role_exists(creds["username"])

    report = reconcile_vault(  # no worker holds the issue's claim: its process died
        uow=world.uow, policy=POLICY, inventory=world.broker, clock=world.clock
    )
    assert report.interrupted_grants == ["G-CRASHED"]
    assert lost.token_accessor in report.revoked_tokens
    assert not world.database.role_exists(creds["username"])
    assert Action.VAULT_ORPHAN_REVOKED in world.actions()


def test_permission_denied_names_the_path(world: World) -> None:
    root = world.vault.root()
    policy_text = Path(__file__).resolve().parents[3] / "deploy/vault/policies/gatehouse.hcl"
    root.sys.create_or_update_policy(
        "gatehouse",
        policy_text.read_text().replace("auth/token/create/gatehouse-incident", "nothing/here"),
    )
    result = world.issue(world.approved())
    assert result.request.state is RequestState.FAILED and not result.retrying
    assert result.error is not None
    assert "lacks the 'update' capability on auth/token/create/gatehouse-incident" in (result.error)


def test_no_secret_reaches_the_database_the_audit_trail_or_the_logs(
    world: World,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    for resource in ("inference-logs-ro", "serving-cluster-exec"):
        result = world.issue(world.approved(resource, duration="20m"))
        assert result.credential is not None and result.credential.wrapping_token
        world.unwrap(result.credential.wrapping_token)
    world.secrets_seen += [t.token for t in world.broker._incident_tokens.values()]
    world.secrets_seen.append(world.broker._session.client.token)
    world.close()
    stored = dump_database(world.engine)
    logged = caplog.text
    assert len(world.secrets_seen) >= 6
    for secret in world.secrets_seen:
        assert secret not in stored
        assert secret not in logged


def dump_database(engine: Engine) -> str:
    """Every value of every table, audit events included, as one string."""
    metadata = MetaData()
    metadata.reflect(engine)
    parts = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            parts += [repr(row) for row in connection.execute(select(table))]
    return "\n".join(parts)


def test_ephemeral_delivery_hands_over_the_secret_once_and_tracks_its_lease(
    set_up_vault: SetUpVault, ml_database: MlDatabase
) -> None:
    broker = make_broker(set_up_vault)
    resource = replace(POLICY.resource("feature-store-rw"), delivery=Delivery.EPHEMERAL)
    now = datetime.now(UTC)
    grant = Grant(
        id="G-EPHEMERAL",
        request_id="R-EPHEMERAL",
        incident_id="INC-EPHEMERAL",
        resource=resource.name,
        requester_id="U0ONCALL2",
        created_at=now,
    )
    credential = broker.issue(
        grant=grant, resource=resource, until=now + timedelta(minutes=15), now=now
    )
    assert credential.wrapping_token is None and credential.secret is not None
    assert credential.lease_id and credential.lease_id.startswith(
        "database/creds/feature-store-rw/"
    )
    assert credential.secret["password"] not in repr(credential)
    user = credential.secret["username"]
    ml_database.users.append(user)
    with ml_database.login(user, credential.secret["password"]) as session:
        session.execute("INSERT INTO feature_store.features VALUES ('ctr', 1)")
    grant.lease_id, grant.token_accessor = credential.lease_id, credential.token_accessor
    broker.revoke(grant=grant)
    assert not ml_database.role_exists(user)
