"""The Vault emulator, driven through the real hvac client (raw HTTP where hvac hides things)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import psycopg
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from hvac import exceptions as hvac_exceptions
from psycopg import sql

from tests.emulators.vault import VaultEmulator, running_vault
from tests.tools.jwt import self_signed_certificate, service_account_jwt

REPO = Path(__file__).resolve().parents[2]
ENVELOPE_KEYS = {
    "request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings",
    "auth", "mount_type",
}  # fmt: skip
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    with running_vault() as emulator:
        yield emulator


@pytest.fixture
def root(vault: VaultEmulator) -> hvac.Client:
    return hvac.Client(url=vault.url, token=vault.root_token)


def _raw(vault: VaultEmulator, method: str, path: str, token: str | None = None,
         **kwargs: Any) -> requests.Response:  # fmt: skip
    headers = {"X-Vault-Token": token} if token else {}
    headers.update(kwargs.pop("headers", {}))
    return requests.request(method, f"{vault.url}/v1/{path}", headers=headers, timeout=10, **kwargs)


def _child(root: hvac.Client, vault: VaultEmulator, **kwargs: Any) -> tuple[hvac.Client, Any]:
    auth = root.auth.token.create(**kwargs)["auth"]
    return hvac.Client(url=vault.url, token=auth["client_token"]), auth


# -- protocol basics ---------------------------------------------------------------------------


def test_envelope_content_type_and_nulls(vault: VaultEmulator) -> None:
    response = _raw(vault, "GET", "auth/token/lookup-self", vault.root_token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["wrap_info"] is None
    assert body["warnings"] is None
    assert body["auth"] is None
    assert body["lease_id"] == ""
    assert body["mount_type"] == "token"
    data = body["data"]
    assert data["id"] == vault.root_token
    assert data["policies"] == ["root"]
    assert data["expire_time"] is None
    assert data["type"] == "service"
    assert isinstance(data["creation_time"], int)
    assert len(data["accessor"]) == 24
    assert vault.root_token.startswith("hvs.")


def test_bad_token_is_403_with_exact_json(vault: VaultEmulator) -> None:
    response = _raw(vault, "GET", "auth/token/lookup-self", "hvs.nope")
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"errors": ["permission denied"]}
    client = hvac.Client(url=vault.url, token="hvs.nope")
    assert client.is_authenticated() is False
    with pytest.raises(hvac_exceptions.Forbidden) as raised:
        client.auth.token.lookup_self()
    assert raised.value.errors == ["permission denied"]
    assert _raw(vault, "GET", "auth/token/lookup-self").status_code == 403


def test_health_unknown_route_and_methods(vault: VaultEmulator, root: hvac.Client) -> None:
    health = root.sys.read_health_status(method="GET")
    assert health["initialized"] is True
    assert health["sealed"] is False
    assert "cluster_name" in health
    missing = _raw(vault, "GET", "nothing/here", vault.root_token)
    assert missing.status_code == 404
    assert missing.json() == {
        "errors": ['no handler for route "nothing/here". route entry not found.']
    }
    assert _raw(vault, "DELETE", "auth/token/lookup-self", vault.root_token).status_code == 405
    # LIST and GET ?list=true are the same; no keys is a 404 with an empty error list.
    empty = _raw(vault, "LIST", "auth/token/roles", vault.root_token)
    assert (empty.status_code, empty.json()) == (404, {"errors": []})
    root.auth.token.create_or_update_role("r1")
    listed = _raw(vault, "GET", "auth/token/roles", vault.root_token, params={"list": "true"})
    assert listed.json()["data"] == {"keys": ["r1"]}
    assert root.auth.token.list_roles()["data"]["keys"] == ["r1"]


def test_calls_are_recorded_with_the_token_redacted(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    root.auth.token.create(policies=["default"], ttl="1h")
    call = vault.calls[-1]
    assert (call.method, call.path) == ("POST", "auth/token/create")
    assert call.headers["X-Vault-Token"] == "<redacted>"
    assert call.json["ttl"] == "1h"


# -- tokens ------------------------------------------------------------------------------------


def test_token_create_lookup_renew_revoke(vault: VaultEmulator, root: hvac.Client) -> None:
    client, auth = _child(root, vault, policies=["default"], ttl="1h", meta={"incident": "42"})
    assert auth["lease_duration"] == 3600
    assert auth["renewable"] is True
    assert auth["orphan"] is False
    assert auth["metadata"] == {"incident": "42"}
    looked = client.auth.token.lookup_self()["data"]
    assert looked["ttl"] == 3600
    assert looked["display_name"] == "token-token"
    assert looked["path"] == "auth/token/create"
    assert looked["orphan"] is False
    assert looked["policies"] == ["default"]
    assert looked["expire_time"].endswith("Z")
    vault.advance_clock(600)
    renewed = client.auth.token.renew_self(increment="2h")
    assert renewed["auth"]["lease_duration"] == 7200
    by_accessor = root.auth.token.lookup_accessor(auth["accessor"])["data"]
    assert by_accessor["id"] == ""
    assert by_accessor["last_renewal"] is not None
    with pytest.raises(hvac_exceptions.InvalidRequest, match="invalid accessor"):
        root.auth.token.lookup_accessor("x" * 24)
    response = root.auth.token.revoke_accessor(auth["accessor"])
    assert response.status_code == 204
    assert response.content == b""
    assert client.is_authenticated() is False


def test_revoking_a_parent_revokes_children_but_not_orphans(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    root.sys.create_or_update_policy(
        "maker", 'path "auth/token/create*" { capabilities = ["update"] }'
    )
    root.auth.token.create_or_update_role("incident", allowed_policies=["maker"], orphan=True)
    parent, _ = _child(root, vault, policies=["maker"], ttl="1h")
    child, child_auth = _child(parent, vault, policies=["maker"], ttl="1h")
    grandchild, _ = _child(child, vault, ttl="1h")
    orphan, orphan_auth = _child(parent, vault, role_name="incident", ttl="1h")
    assert orphan_auth["orphan"] is True
    assert child_auth["orphan"] is False
    parent.auth.token.revoke_self()
    assert parent.is_authenticated() is False
    assert child.is_authenticated() is False
    assert grandchild.is_authenticated() is False
    assert orphan.is_authenticated() is True
    assert orphan.auth.token.lookup_self()["data"]["role"] == "incident"


def test_every_revocation_is_counted_with_its_cause_and_caller(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    root_accessor = root.auth.token.lookup_self()["data"]["accessor"]
    _, parent = _child(root, vault, ttl="1h")
    child, child_auth = _child(hvac.Client(url=vault.url, token=parent["client_token"]), vault)
    _, short = _child(root, vault, ttl="5s")
    root.auth.token.revoke_accessor(parent["accessor"])
    with pytest.raises(hvac_exceptions.InvalidRequest, match="invalid accessor"):
        root.auth.token.revoke_accessor(parent["accessor"])  # already gone: still counted
    vault.advance_clock(6)
    assert child.is_authenticated() is False
    seen = [(r.target, r.cause, r.caller, r.found) for r in vault.revocations()]
    assert seen == [  # a tree is revoked children first
        (child_auth["accessor"], "parent", None, True),
        (parent["accessor"], "request", root_accessor, True),
        (parent["accessor"], "request", root_accessor, False),
        (short["accessor"], "expired", None, True),
    ]


def test_revoking_an_orphan_by_accessor_takes_its_whole_tree_in_one_request(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    """What a close relies on. Vault's docs: `token revoke -accessor` revokes "the token and
    all of the token's children" (https://developer.hashicorp.com/vault/docs/commands/token/revoke,
    API: https://developer.hashicorp.com/vault/api-docs/auth/token, revoke a token accessor);
    a role with `orphan` makes tokens without a parent, which the bot's own token going leaves
    alone; and "if the parent is revoked or expires, so do all its children regardless of
    their own leases" (Vault's Tokens and Leases guide, lease hierarchy)."""
    root.sys.create_or_update_policy(
        "maker", 'path "auth/token/create*" { capabilities = ["update"] }'
    )
    root.auth.token.create_or_update_role("incident", allowed_policies=["maker"], orphan=True)
    bot, _ = _child(root, vault, policies=["maker"], ttl="1h")
    incident, incident_auth = _child(bot, vault, role_name="incident", ttl="1h")
    grants = [_child(incident, vault, policies=["maker"], ttl="30m") for _ in range(3)]
    nested, _ = _child(grants[0][0], vault, ttl="10m")
    before = vault.requests_by_path()
    root.auth.token.revoke_accessor(incident_auth["accessor"])
    sent = vault.requests_by_path() - before
    assert sent == {"auth/token/revoke-accessor": 1}
    for client in (incident, nested, *(grant for grant, _ in grants)):
        assert client.is_authenticated() is False
    assert bot.is_authenticated() is True  # the orphan's maker keeps its own token
    causes = {r.target: r.cause for r in vault.revocations()}
    assert causes[incident_auth["accessor"]] == "request"
    assert all(causes[auth["accessor"]] == "parent" for _, auth in grants)


def test_requests_are_counted_by_path(vault: VaultEmulator, root: hvac.Client) -> None:
    _, auth = _child(root, vault, ttl="1h")
    root.auth.token.lookup_accessor(auth["accessor"])
    root.auth.token.lookup_accessor(auth["accessor"])
    counted = vault.requests_by_path()
    assert counted["auth/token/create"] == 1 and counted["auth/token/lookup-accessor"] == 2


def test_child_policies_must_be_a_subset_unless_a_role_allows(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    root.sys.create_or_update_policy(
        "maker", 'path "auth/token/create*" { capabilities = ["update"] }'
    )
    root.sys.create_or_update_policy("db", 'path "database/creds/*" { capabilities = ["read"] }')
    maker, _ = _child(root, vault, policies=["maker"], ttl="1h")
    with pytest.raises(
        hvac_exceptions.InvalidRequest, match="child policies must be subset of parent"
    ):
        maker.auth.token.create(policies=["db"])
    with pytest.raises(hvac_exceptions.InvalidRequest, match="orphan"):
        maker.auth.token.create(policies=["maker"], no_parent=True)
    root.auth.token.create_or_update_role(
        "grant", allowed_policies=["db"], disallowed_policies=["maker"]
    )
    granted = maker.auth.token.create(role_name="grant", policies=["db"], ttl="10m")["auth"]
    assert granted["policies"] == ["db", "default"]
    with pytest.raises(hvac_exceptions.InvalidRequest, match="allowed policies"):
        maker.auth.token.create(role_name="grant", policies=["maker"])
    with pytest.raises(hvac_exceptions.InvalidRequest, match="unknown role"):
        maker.auth.token.create(role_name="nope")
    role = root.auth.token.read_role("grant")["data"]
    assert role["allowed_policies"] == ["db"]
    assert role["orphan"] is False


def test_explicit_max_ttl_caps_ttl_and_renewal(vault: VaultEmulator, root: hvac.Client) -> None:
    created = root.auth.token.create(policies=["default"], ttl="2h", explicit_max_ttl="1h")
    assert created["auth"]["lease_duration"] == 3600
    assert "higher than explicit max TTL" in created["warnings"][0]
    client = hvac.Client(url=vault.url, token=created["auth"]["client_token"])
    vault.advance_clock(1800)
    renewed = client.auth.token.renew_self(increment="1h")
    assert renewed["auth"]["lease_duration"] == 1800
    assert renewed["warnings"] == [
        'TTL of "1h0m0s" exceeded the effective max_ttl of "30m0s"; TTL value is capped accordingly'
    ]
    vault.advance_clock(1801)
    assert client.is_authenticated() is False


def test_non_renewable_and_system_max(vault: VaultEmulator, root: hvac.Client) -> None:
    client, auth = _child(root, vault, policies=["default"], ttl="1000h", renewable=False)
    assert auth["lease_duration"] == 768 * 3600
    with pytest.raises(hvac_exceptions.InvalidRequest, match="lease is not renewable"):
        client.auth.token.renew_self()


# -- policies ----------------------------------------------------------------------------------


def test_acl_globs_deny_and_sudo(vault: VaultEmulator, root: hvac.Client) -> None:
    root.sys.create_or_update_policy(
        "ops",
        """
        # comments are fine
        path "database/creds/+" { capabilities = ["read"] }
        path "database/creds/admin" { capabilities = ["deny"] }
        path "database/roles/*" { capabilities = ["read", "list"] }
        path "sys/leases/lookup/*" { capabilities = ["list"] }
        path "sys/leases/revoke-prefix/*" { capabilities = ["update", "sudo"] }
        """,
    )
    client, _ = _child(root, vault, policies=["ops"], ttl="1h")
    paths = ["database/creds/ro", "database/creds/admin", "database/creds/a/b", "database/roles/x"]
    caps = client.sys.get_capabilities(paths=paths)
    assert caps["database/creds/ro"] == ["read"]
    assert caps["database/creds/admin"] == ["deny"]
    assert caps["database/creds/a/b"] == ["deny"]
    assert caps["data"]["database/roles/x"] == ["list", "read"]
    single = _raw(vault, "POST", "sys/capabilities-self", client.token, json={"path": "sys/mounts"})
    assert single.json()["capabilities"] == ["deny"]
    assert single.json()["data"]["capabilities"] == ["deny"]
    # LIST on sys/leases/lookup needs sudo as well as list.
    with pytest.raises(hvac_exceptions.Forbidden):
        client.sys.list_leases("database/creds/")
    assert client.sys.revoke_prefix("database/creds/").status_code == 204
    with pytest.raises(hvac_exceptions.Forbidden):
        client.sys.list_mounted_secrets_engines()
    # root sees root everywhere
    assert root.sys.get_capabilities(paths=["a/b"])["a/b"] == ["root"]
    with pytest.raises(hvac_exceptions.InvalidRequest, match="invalid capability"):
        root.sys.create_or_update_policy("bad", 'path "x" { capabilities = ["fly"] }')
    assert root.sys.read_policy("ops")["data"]["rules"].strip().startswith("# comments")
    assert root.sys.read_acl_policy("ops")["data"]["name"] == "ops"


# -- auth methods ------------------------------------------------------------------------------


def test_approle_login(vault: VaultEmulator, root: hvac.Client) -> None:
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("bot", token_policies=["default"], token_ttl="20m",
                                               token_max_ttl="1h")  # fmt: skip
    role_id = root.auth.approle.read_role_id("bot")["data"]["role_id"]
    secret = root.auth.approle.generate_secret_id("bot")["data"]
    assert set(secret) >= {"secret_id", "secret_id_accessor"}
    client = hvac.Client(url=vault.url)
    login = client.auth.approle.login(role_id=role_id, secret_id=secret["secret_id"])
    auth = login["auth"]
    assert auth["lease_duration"] == 1200
    assert auth["metadata"] == {"role_name": "bot"}
    assert auth["orphan"] is True
    assert auth["token_type"] == "service"
    assert auth["policies"] == ["default"]
    assert client.token == auth["client_token"]
    assert client.auth.token.lookup_self()["data"]["path"] == "auth/approle/login"
    vault.advance_clock(1000)
    renewed = client.auth.token.renew_self(increment="2h")
    assert renewed["auth"]["lease_duration"] == 3600 - 1000
    with pytest.raises(hvac_exceptions.InvalidRequest, match="invalid role or secret ID"):
        hvac.Client(url=vault.url).auth.approle.login(role_id=role_id, secret_id="wrong")
    root.auth.approle.update_role_id("bot", "custom-role-id")
    assert root.auth.approle.read_role_id("bot")["data"]["role_id"] == "custom-role-id"


def test_kubernetes_login_verifies_signature_and_bindings(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = self_signed_certificate(key)
    root.sys.enable_auth_method("kubernetes")
    root.auth.kubernetes.configure("https://kubernetes.default.svc", pem_keys=[pem])
    root.auth.kubernetes.create_role("gatehouse", bound_service_account_names=["gatehouse"],
                                     bound_service_account_namespaces=["ops"],
                                     policies=["default"], ttl="15m")  # fmt: skip
    good = {"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ops:gatehouse"}
    client = hvac.Client(url=vault.url)
    auth = client.auth.kubernetes.login("gatehouse", service_account_jwt(key, good))["auth"]
    assert auth["lease_duration"] == 900
    assert auth["metadata"]["service_account_namespace"] == "ops"
    wrong_ns = {"sub": "system:serviceaccount:dev:gatehouse"}
    with pytest.raises(hvac_exceptions.Forbidden):
        client.auth.kubernetes.login("gatehouse", service_account_jwt(key, wrong_ns))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(hvac_exceptions.Forbidden):
        client.auth.kubernetes.login("gatehouse", service_account_jwt(other_key, good))


# -- wrapping, faults, lifecycle ---------------------------------------------------------------


def test_wrapping_is_single_use_and_expires(vault: VaultEmulator, root: hvac.Client) -> None:
    wrapped = root.auth.token.create(policies=["default"], ttl="1h", wrap_ttl="5m")
    info = wrapped["wrap_info"]
    assert wrapped["auth"] is None
    assert info["ttl"] == 300
    assert info["creation_path"] == "auth/token/create"
    assert len(info["wrapped_accessor"]) == 24
    lookup = _raw(vault, "POST", "sys/wrapping/lookup", json={"token": info["token"]}).json()
    assert lookup["data"]["creation_ttl"] == 300
    unwrapped = hvac.Client(url=vault.url, token=info["token"]).sys.unwrap()
    assert unwrapped["auth"]["accessor"] == info["wrapped_accessor"]
    with pytest.raises(hvac_exceptions.InvalidRequest, match="wrapping token is not valid"):
        root.sys.unwrap(info["token"])
    payload = root.sys.wrap({"hello": "world"}, ttl="60s")["wrap_info"]
    vault.advance_clock(61)
    with pytest.raises(hvac_exceptions.InvalidRequest, match="wrapping token is not valid"):
        root.sys.unwrap(payload["token"])


def test_stop_start_keeps_state_and_refuses_while_down(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    client, _ = _child(root, vault, policies=["default"], ttl="1h")
    port = vault.port
    vault.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        client.auth.token.lookup_self()
    vault.start()
    assert vault.port == port
    assert client.auth.token.lookup_self()["data"]["ttl"] > 0


def test_injected_failures_map_to_hvac_exceptions(vault: VaultEmulator, root: hvac.Client) -> None:
    vault.fail_next(1, 503)
    with pytest.raises(hvac_exceptions.VaultDown):
        root.auth.token.lookup_self()
    vault.fail_next(1, 429, path_prefix="sys/leases")
    root.auth.token.lookup_self()  # not under the prefix
    with pytest.raises(hvac_exceptions.RateLimitExceeded) as raised:
        root.sys.read_lease("database/creds/x/y")
    assert raised.value.errors
    vault.set_delay(0.5)
    slow = hvac.Client(url=vault.url, token=vault.root_token, timeout=0.1)
    with pytest.raises(requests.exceptions.Timeout):
        slow.auth.token.lookup_self()
    vault.set_delay(0)


def test_spec_checks_unknown_and_mistyped_parameters(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    created = root.adapter.post("/v1/auth/token/create", json={"ttl": "1h", "colour": "red"})
    assert created["warnings"] == ["Endpoint ignored these unrecognized parameters: [colour]"]
    with pytest.raises(hvac_exceptions.InvalidRequest, match='field "num_uses"'):
        root.adapter.post("/v1/auth/token/create", json={"num_uses": "many"})
    with pytest.raises(hvac_exceptions.InvalidRequest, match='field "renewable"'):
        root.adapter.post("/v1/auth/token/roles/x", json={"renewable": "perhaps"})
    with pytest.raises(hvac_exceptions.InvalidRequest, match='field "allowed_policies"'):
        root.adapter.post("/v1/auth/token/roles/x", json={"allowed_policies": {"a": 1}})


def test_module_runs_like_vault_dev_server() -> None:
    env = {**os.environ, "VAULT_DEV_ROOT_TOKEN_ID": "hvs.devroot"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.vault", "--port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        address = next(line.split(": ", 1)[1].strip() for line in lines if "Api Address" in line)
        assert any("Root Token: hvs.devroot" in line for line in lines)
        client = hvac.Client(url=address, token="hvs.devroot")
        assert client.is_authenticated()
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- database engine against real PostgreSQL ---------------------------------------------------


@dataclass
class Postgres:
    admin_url: str
    url: str
    database: str
    users: list[str]

    def login(self, user: str, password: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, user=user, password=password, connect_timeout=5,
                               autocommit=True)  # fmt: skip

    def role_exists(self, user: str) -> bool:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            return row is not None


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    admin_url = os.environ.get("GATEHOUSE_TEST_POSTGRES_URL") or DEFAULT_ADMIN_URL
    admin_url = admin_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL is not reachable ({str(error).strip().splitlines()[0]})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"gatehouse_vault_{secrets.token_hex(6)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = admin_url.rpartition("/")
    url = f"{base}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE incidents (id int PRIMARY KEY, title text)")
        conn.execute("INSERT INTO incidents VALUES (1, 'db on fire')")
        conn.execute("CREATE VIEW incident_titles AS SELECT title FROM incidents")
    state = Postgres(admin_url=admin_url, url=url, database=name, users=[])
    try:
        yield state
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        for user in state.users:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))
        admin.close()


CREATE = [
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
    ' GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'
]


@pytest.fixture
def db(vault: VaultEmulator, root: hvac.Client, postgres: Postgres) -> Postgres:
    root.sys.enable_secrets_engine("database")
    admin_template = postgres.url.replace("postgres@", "{{username}}@", 1)
    root.secrets.database.configure(
        "main", "postgresql-database-plugin", connection_url=admin_template,
        username="postgres", allowed_roles=["readonly"],
    )  # fmt: skip
    root.secrets.database.create_role("readonly", db_name="main", creation_statements=CREATE,
                                      default_ttl="1h", max_ttl="2h")  # fmt: skip
    return postgres


def _creds(client: hvac.Client, db: Postgres, **kwargs: Any) -> Any:
    response = client.read("database/creds/readonly", **kwargs)
    if response.get("data"):
        db.users.append(response["data"]["username"])
    return response


def test_database_config_and_role_shapes(root: hvac.Client, db: Postgres) -> None:
    config = root.secrets.database.read_connection("main")["data"]
    assert config["plugin_name"] == "postgresql-database-plugin"
    assert "password" not in config["connection_details"]
    role = root.secrets.database.read_role("readonly")["data"]
    assert (role["default_ttl"], role["max_ttl"]) == (3600, 7200)
    with pytest.raises(hvac_exceptions.InvalidRequest, match="unknown role: nope"):
        root.secrets.database.generate_credentials("nope")
    with pytest.raises(hvac_exceptions.InvalidRequest, match="error verifying connection"):
        root.secrets.database.configure(
            "broken", "postgresql-database-plugin", connection_url="postgresql://x@127.0.0.1:1/x"
        )


def test_creds_log_in_and_revocation_cuts_sessions(
    vault: VaultEmulator, root: hvac.Client, db: Postgres
) -> None:
    creds = _creds(root, db)
    assert set(creds) == ENVELOPE_KEYS
    assert creds["mount_type"] == "database"
    assert creds["lease_duration"] == 3600
    assert creds["renewable"] is True
    user, password = creds["data"]["username"], creds["data"]["password"]
    assert user.startswith("v-root-readonly-")
    assert len(password) == 20 and "-" in password
    assert creds["lease_id"].startswith("database/creds/readonly/")
    held = db.login(user, password)
    assert held.execute("SELECT title FROM incident_titles").fetchone() == ("db on fire",)
    assert root.sys.revoke_lease(creds["lease_id"]).status_code == 204
    assert not db.role_exists(user)
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        db.login(user, password)
    with pytest.raises(hvac_exceptions.InvalidRequest, match="invalid lease"):
        root.sys.read_lease(creds["lease_id"])
    assert root.sys.revoke_lease(creds["lease_id"]).status_code == 204


def test_expiry_by_clock_drops_the_role(
    vault: VaultEmulator, root: hvac.Client, db: Postgres
) -> None:
    creds = _creds(root, db)
    user, password = creds["data"]["username"], creds["data"]["password"]
    held = db.login(user, password)
    vault.advance_clock(3599)
    assert db.role_exists(user)
    vault.advance_clock(2)
    assert not db.role_exists(user)
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    with pytest.raises(hvac_exceptions.InvalidRequest, match="invalid lease"):
        root.sys.read_lease(creds["lease_id"])


def test_renew_is_capped_by_max_ttl_and_by_the_token(
    vault: VaultEmulator, root: hvac.Client, db: Postgres
) -> None:
    creds = _creds(root, db)
    vault.advance_clock(3000)
    renewed = root.sys.renew_lease(creds["lease_id"], increment=7200)
    assert renewed["lease_id"] == creds["lease_id"]
    assert renewed["lease_duration"] == 4200
    assert renewed["warnings"] == [
        'TTL of "2h0m0s" exceeded the effective max_ttl of "1h10m0s"; '
        "TTL value is capped accordingly"
    ]
    assert root.sys.renew_lease(creds["lease_id"])["lease_duration"] == 3600
    looked = root.sys.read_lease(creds["lease_id"])["data"]
    assert looked["ttl"] == 3600
    assert looked["last_renewal"] is not None
    with pytest.raises(hvac_exceptions.InvalidRequest, match="lease not found"):
        root.sys.renew_lease("database/creds/readonly/nope")
    short, _ = _child(root, vault, policies=["root"], ttl="10m")
    limited = _creds(short, db)
    assert limited["lease_duration"] == 600
    vault.advance_clock(60)
    assert root.sys.renew_lease(limited["lease_id"], increment=3600)["lease_duration"] == 540


def test_token_revocation_revokes_leases_of_the_tree(
    vault: VaultEmulator, root: hvac.Client, db: Postgres
) -> None:
    rules = (
        'path "database/creds/*" { capabilities = ["read"] }\n'
        'path "auth/token/create" { capabilities = ["update"] }'
    )
    root.sys.create_or_update_policy("creds", rules)
    parent, _ = _child(root, vault, policies=["creds"], ttl="1h")
    child, _ = _child(parent, vault, policies=["creds"], ttl="1h")
    mine, theirs = _creds(parent, db), _creds(child, db)
    assert theirs["data"]["username"].startswith("v-token-to-readonly-")
    keys = root.sys.list_leases("database/creds/readonly")["data"]["keys"]
    assert sorted(keys) == sorted(x["lease_id"].rsplit("/", 1)[1] for x in (mine, theirs))
    assert root.sys.list_leases("database/")["data"]["keys"] == ["creds/"]
    parent.auth.token.revoke_self()
    for creds in (mine, theirs):
        assert not db.role_exists(creds["data"]["username"])
    with pytest.raises(hvac_exceptions.InvalidPath):
        root.sys.list_leases("database/creds/readonly")
    a, b = _creds(root, db), _creds(root, db)
    assert root.sys.revoke_prefix("database/creds/readonly").status_code == 204
    assert not db.role_exists(a["data"]["username"])
    assert not db.role_exists(b["data"]["username"])


def test_wrapped_creds_unwrap_once(vault: VaultEmulator, root: hvac.Client, db: Postgres) -> None:
    wrapped = root.read("database/creds/readonly", wrap_ttl="60s")
    assert wrapped["data"] is None
    assert wrapped["lease_id"] == ""
    assert wrapped["wrap_info"]["creation_path"] == "database/creds/readonly"
    raw = _raw(vault, "POST", "sys/wrapping/unwrap", wrapped["wrap_info"]["token"])
    creds = raw.json()
    db.users.append(creds["data"]["username"])
    assert creds["lease_id"].startswith("database/creds/readonly/")
    assert root.sys.read_lease(creds["lease_id"])["data"]["ttl"] > 0
    again = _raw(vault, "POST", "sys/wrapping/unwrap", wrapped["wrap_info"]["token"])
    assert again.status_code == 400
    assert again.json() == {"errors": ["wrapping token is not valid or does not exist"]}
    with db.login(creds["data"]["username"], creds["data"]["password"]) as conn:
        assert conn.execute("SELECT count(*) FROM incident_titles").fetchone() == (1,)
