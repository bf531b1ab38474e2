"""The broker's contract with Vault. The same tests run against the emulator always, and
against a real Vault when GATEHOUSE_TEST_VAULT_ADDR and GATEHOUSE_TEST_VAULT_TOKEN are set."""

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.domain.errors import CredentialDenied, CredentialUnavailable
from bot.domain.grant import Grant
from integrations.vault import VaultConfig, VaultCredentialBroker, VaultSession
from tests.emulators.vault import VaultEmulator, running_vault
from tests.emulators.vault import spec as vault_spec
from tests.integration.vault_support import INCIDENT_POLICIES, RecordedTokens
from tests.tools.jwt import self_signed_certificate, service_account_jwt
from tests.unit.example_policy import example_policy

POLICY = example_policy()
EXEC = POLICY.resource("serving-cluster-exec")
POLICIES_DIR = Path(__file__).resolve().parents[3] / "deploy" / "vault" / "policies"
SPEC = vault_spec.spec_path()  # tests/specs/vault/openapi.json unless GATEHOUSE_VAULT_OPENAPI


@dataclass
class Target:
    """A Vault to test against, with the token tree's role and policies in place."""

    address: str
    root_token: str
    emulator: VaultEmulator | None

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token)

    def bot_token(self) -> str:
        """A token for the bot carrying the `gatehouse` policy (a child of root)."""
        created = self.root().auth.token.create(policies=["gatehouse"], ttl="1h")
        return str(created["auth"]["client_token"])


def prepare(target: Target) -> Target:
    root = target.root()
    for name in ("gatehouse", "gatehouse-incident-token", "ml-serving-exec"):
        root.sys.create_or_update_policy(name, (POLICIES_DIR / f"{name}.hcl").read_text())
    for name in ("gatehouse-inference-logs-ro", "gatehouse-feature-store-rw"):
        root.sys.create_or_update_policy(name, (POLICIES_DIR / f"{name}.hcl").read_text())
    root.write(
        "auth/token/roles/gatehouse-incident",
        allowed_policies=",".join(INCIDENT_POLICIES),
        orphan=True,
        renewable=True,
        token_explicit_max_ttl="24h",
    )
    return target


@pytest.fixture(params=["emulator", "real-vault"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "emulator":
        with running_vault() as emulator:
            yield prepare(Target(emulator.url, emulator.root_token, emulator))
        return
    address = os.environ.get("GATEHOUSE_TEST_VAULT_ADDR")
    token = os.environ.get("GATEHOUSE_TEST_VAULT_TOKEN")
    if not (address and token):
        pytest.skip("no real Vault: set GATEHOUSE_TEST_VAULT_ADDR and GATEHOUSE_TEST_VAULT_TOKEN")
    yield prepare(Target(address, token, None))


def broker_for(
    target: Target, record: RecordedTokens | None = None, **config: Any
) -> VaultCredentialBroker:
    session = VaultSession(
        VaultConfig(
            address=target.address,
            token=target.bot_token(),
            backoff_seconds=0.01,
            timeout_seconds=config.pop("timeout_seconds", 5.0),
            **config,
        )
    )
    return VaultCredentialBroker(
        session,
        incident_policies=INCIDENT_POLICIES,
        ledger=record or RecordedTokens(),
    )


def grant(minutes: int = 20, incident: str = "INC-20261123-CONTRACT") -> Grant:
    now = datetime.now(UTC)
    return Grant(
        id=f"G-{minutes}-{incident[-4:]}",
        request_id="R-CONTRACT",
        incident_id=incident,
        resource=EXEC.name,
        requester_id="U0ONCALL2",
        created_at=now,
    )


def ends(access: Grant, minutes: int = 20) -> datetime:
    """When the credential issued for `access` is to end: `minutes` after its start."""
    return access.created_at + timedelta(minutes=minutes)


def test_token_resource_is_issued_wrapped_revoked_and_confirmed(target: Target) -> None:
    recorded = RecordedTokens()
    broker = broker_for(target, recorded)
    access = grant()
    credential = broker.issue(
        grant=access, resource=EXEC, until=ends(access), now=access.created_at
    )
    assert recorded.accessors and recorded.accessors[0][0] == access.incident_id
    assert credential.wrapping_token and credential.token_accessor and credential.wrapping_accessor
    assert "hvs." not in repr(credential)
    unwrapped = hvac.Client(url=target.address, token=credential.wrapping_token).sys.unwrap()
    auth = unwrapped["auth"]
    assert auth["accessor"] == credential.token_accessor
    assert "ml-serving-exec" in auth["policies"] and auth["lease_duration"] <= 20 * 60
    holder = hvac.Client(url=target.address, token=auth["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        holder.auth.token.renew_self(increment="1h")  # no extending one's own access
    access.token_accessor = credential.token_accessor
    confirmed = broker.revoke(grant=access)
    assert confirmed <= datetime.now(UTC)
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=target.address, token=auth["client_token"]).auth.token.lookup_self()
    assert broker.revoke(grant=access) >= confirmed  # already gone counts as revoked


def test_incident_tokens_are_orphans_and_revoking_them_ends_everything(target: Target) -> None:
    recorded = RecordedTokens()
    broker = broker_for(target, recorded)
    access = grant()
    credential = broker.issue(
        grant=access, resource=EXEC, until=ends(access), now=access.created_at
    )
    bot = broker._session.client
    bot.auth.token.revoke_self()  # the bot's own token rotates away...
    incident_accessor = recorded.accessors[0][1]
    root = target.root()
    assert root.auth.token.lookup_accessor(incident_accessor)["data"]["orphan"] is True
    assert root.auth.token.lookup_accessor(credential.token_accessor)  # ...access survives
    fresh = broker_for(target)
    fresh.revoke_incident(incident_id=access.incident_id, accessors=[incident_accessor])
    for accessor in (incident_accessor, credential.token_accessor):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            root.auth.token.lookup_accessor(accessor)


def test_renew_extends_within_the_ceiling(target: Target) -> None:
    broker = broker_for(target)
    access = grant(minutes=10)
    credential = broker.issue(
        grant=access, resource=EXEC, until=ends(access, 10), now=access.created_at
    )
    access.token_accessor = credential.token_accessor
    until = access.created_at + timedelta(minutes=40)
    granted = broker.renew(grant=access, until=until, now=access.created_at)
    assert until - timedelta(seconds=5) <= granted <= until + timedelta(seconds=5)
    too_far = access.created_at + timedelta(hours=3)  # the resource's max_ttl is 1h
    assert broker.renew(grant=access, until=too_far, now=access.created_at) <= (
        access.created_at + EXEC.max_ttl + timedelta(seconds=5)
    )


def test_a_bad_token_is_permission_denied_naming_the_path(target: Target) -> None:
    session = VaultSession(VaultConfig(address=target.address, token="hvs.not-a-token"))
    broker = VaultCredentialBroker(
        session, incident_policies=INCIDENT_POLICIES, ledger=RecordedTokens()
    )
    access = grant()
    with pytest.raises(CredentialDenied, match="look up the bot's token"):
        broker.issue(grant=access, resource=EXEC, until=ends(access), now=access.created_at)


def test_no_leases_under_an_unused_prefix(target: Target) -> None:
    assert broker_for(target).list_leases("database/creds/nothing-here") == []


# -- emulator only: faults, time and the wire ------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[Target]:
    with running_vault() as vault:
        yield prepare(Target(vault.url, vault.root_token, vault))


def test_connection_errors_429_and_5xx_are_retried_then_reported(emulator: Target) -> None:
    vault = emulator.emulator
    assert vault is not None
    broker = broker_for(emulator)
    vault.fail_next(2, status=503)
    vault.fail_next(1, status=429)
    access = grant()
    assert broker.issue(
        grant=access, resource=EXEC, until=ends(access), now=access.created_at
    ).wrapping_token
    vault.fail_next(10, status=502, path_prefix="auth/token/create")
    other = grant(incident="INC-20261123-OTHER")
    with pytest.raises(CredentialUnavailable, match="Gatehouse will retry"):
        broker.issue(grant=other, resource=EXEC, until=ends(other), now=datetime.now(UTC))


def test_an_access_asks_vault_only_what_it_needs(emulator: Target) -> None:
    """Two requests per access (the grant's token, then nothing else for a token resource):
    the incident's token is made with headroom, so the accesses after the first fit under it
    without a renewal; one that would outlive it renews it once."""
    vault = emulator.emulator
    assert vault is not None
    broker = broker_for(emulator)
    start = datetime.now(UTC)
    first = grant(minutes=20)
    broker.issue(grant=first, resource=EXEC, until=ends(first), now=start)
    made = len(vault.calls)
    for minute in range(1, 6):  # five more, each ending a minute after the one before
        later = grant(minutes=20 + minute)
        broker.issue(grant=later, resource=EXEC, until=ends(later, 20 + minute), now=start)
    paths = [call.path for call in vault.calls[made:]]
    assert paths == ["auth/token/create"] * 5
    longest = grant(minutes=59)
    beyond = start + timedelta(hours=2)  # past the incident token's headroom
    broker.issue(grant=longest, resource=EXEC, until=beyond, now=start)
    paths = [call.path for call in vault.calls[made + 5 :]]
    assert paths == ["auth/token/renew-self", "auth/token/create"]


def test_the_requests_of_an_access_share_one_kept_alive_connection(emulator: Target) -> None:
    """hvac clients acting as different tokens (the bot, the incident, each grant) send their
    requests over the session's pooled connection: no new connection, and with a real Vault no
    TLS handshake, per request."""
    vault = emulator.emulator
    assert vault is not None
    broker = broker_for(emulator)
    made = len(vault.calls)
    start = datetime.now(UTC)
    for minutes in (20, 21, 22):
        access = grant(minutes=minutes)
        broker.issue(grant=access, resource=EXEC, until=ends(access, minutes), now=start)
    calls = vault.calls[made:]
    assert len(calls) >= 5  # the bot's token looked up, the incident's made, three grants
    assert len({call.client for call in calls}) == 1


def test_every_call_has_a_timeout(emulator: Target) -> None:
    vault = emulator.emulator
    assert vault is not None
    broker = broker_for(emulator, timeout_seconds=0.3, attempts=2)
    vault.set_delay(1.0)
    with pytest.raises(CredentialUnavailable, match="timed out"):
        broker.list_leases("database/creds/inference-logs-ro")
    vault.set_delay(0)


def test_the_bot_logs_in_again_when_its_token_is_gone(emulator: Target) -> None:
    root = emulator.root()
    root.sys.enable_auth_method("approle")
    root.write(
        "auth/approle/role/gatehouse",
        token_policies="gatehouse",
        token_ttl="60s",
        token_max_ttl="10m",
    )
    role_id = root.read("auth/approle/role/gatehouse/role-id")["data"]["role_id"]
    secret_id = root.write("auth/approle/role/gatehouse/secret-id")["data"]["secret_id"]
    session = VaultSession(
        VaultConfig(address=emulator.address, auth="approle", role_id=role_id, secret_id=secret_id)
    )
    broker = VaultCredentialBroker(
        session, incident_policies=INCIDENT_POLICIES, ledger=RecordedTokens()
    )
    first = session.client.token
    root.auth.token.revoke(first)
    assert broker.list_leases("database/creds/x") == []  # 403, log in again, retry
    assert session.client.token != first


def test_the_bot_renews_its_token_before_it_expires(emulator: Target) -> None:
    vault = emulator.emulator
    assert vault is not None
    root = emulator.root()
    short = root.auth.token.create(policies=["gatehouse"], ttl="90s", renewable=True)
    elapsed = [0.0]
    session = VaultSession(
        VaultConfig(address=emulator.address, token=short["auth"]["client_token"]),
        monotonic=lambda: elapsed[0],
    )
    client = session.client
    vault.advance_clock(40)
    elapsed[0] = 40.0
    assert session.client.auth.token.lookup_self()["data"]["ttl"] <= 50  # not yet renewed
    vault.advance_clock(30)
    elapsed[0] = 70.0  # under a third of the TTL is left
    assert session.client is client
    assert client.auth.token.lookup_self()["data"]["ttl"] > 80  # renewed before it ran out


@cache
def _spec_routes() -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    document = json.loads(SPEC.read_text())
    routes = []
    for template, item in document["paths"].items():
        pattern = re.escape(template.strip("/"))
        pattern = re.sub(
            r"\\\{(\w+)\\\}", "[^/]+(?:/[^/]+)*" if "prefix" in template else "[^/]+", pattern
        )
        routes.append((re.compile(pattern + "/?"), item))
    return routes


def _request_properties(item: dict[str, Any]) -> set[str] | None:
    document = json.loads(SPEC.read_text())
    for operation in ("post", "put"):
        body = item.get(operation, {}).get("requestBody")
        if body:
            schema = body["content"]["application/json"]["schema"]
            name = schema["$ref"].rsplit("/", 1)[1]
            return set(document["components"]["schemas"][name].get("properties", {}))
    return None


def test_every_call_the_broker_makes_exists_in_vaults_openapi(emulator: Target) -> None:
    if not SPEC.exists():
        pytest.fail(f"Vault's OpenAPI document is missing at {SPEC}")
    vault = emulator.emulator
    assert vault is not None
    broker = broker_for(emulator)
    first_call = len(vault.calls)
    access = grant()
    credential = broker.issue(
        grant=access, resource=EXEC, until=ends(access), now=access.created_at
    )
    access.token_accessor = credential.token_accessor
    broker.renew(grant=access, until=ends(access) + timedelta(minutes=5), now=access.created_at)
    broker.live_tokens()
    broker.list_leases("database/creds/inference-logs-ro")
    broker.revoke(grant=access)
    broker.revoke_incident(incident_id=access.incident_id, accessors=[])
    checked = bodies = 0
    for call in vault.calls[first_call:]:
        matches = [item for pattern, item in _spec_routes() if pattern.fullmatch(call.path)]
        assert matches, f"{call.method} {call.path} is not in Vault's OpenAPI"
        if isinstance(call.json, dict) and call.json:
            allowed = _request_properties(matches[0])
            assert allowed is not None, call.path
            assert set(call.json) <= allowed, (call.path, set(call.json) - allowed)
            bodies += 1
        checked += 1
    assert checked >= 8 and bodies >= 5


def test_the_bot_logs_in_with_its_kubernetes_service_account(
    emulator: Target, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = emulator.root()
    root.sys.enable_auth_method("kubernetes")
    root.auth.kubernetes.configure(
        "https://kubernetes.default.svc", pem_keys=[self_signed_certificate(key)]
    )
    root.auth.kubernetes.create_role(
        "gatehouse",
        bound_service_account_names=["gatehouse"],
        bound_service_account_namespaces=["ops"],
        policies=["gatehouse"],
        ttl="15m",
    )
    token_file = tmp_path / "token"
    token_file.write_text(service_account_jwt(key, {"sub": "system:serviceaccount:ops:gatehouse"}))
    session = VaultSession(
        VaultConfig(
            address=emulator.address,
            auth="kubernetes",
            kubernetes_role="gatehouse",
            kubernetes_token_path=token_file,
        )
    )
    broker = VaultCredentialBroker(
        session, incident_policies=INCIDENT_POLICIES, ledger=RecordedTokens()
    )
    access = grant()
    assert broker.issue(
        grant=access, resource=EXEC, until=ends(access), now=access.created_at
    ).wrapping_token
    policies = session.client.auth.token.lookup_self()["data"]["policies"]
    assert "gatehouse" in policies
