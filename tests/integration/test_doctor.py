"""`gatehouse doctor` against the emulators: every check passes, then each one fails alone, each
failure named by its real cause with a fix that fits it (network, credentials, Vault itself)."""

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.common import sqlite_file_missing
from bot.cli.doctor import BOT_SCOPES, Check, Outcome, run_checks
from bot.config import Settings
from bot.store import migrate
from integrations.audit_signing import new_key
from tests.emulators.pagerduty import PagerDutyEmulator, running_pagerduty
from tests.emulators.sinks import running_receiver
from tests.emulators.slack import SlackEmulator, running_slack
from tests.harness import EXAMPLE_POLICY, ONCALL_EXAMPLE_POLICY, bot_settings
from tests.tools.vault_setup import SetUpVault

KEY = new_key()[0]
SCOPES = sorted(BOT_SCOPES)
CHECKS = [
    "settings",
    "policy",
    "database",
    "slack",
    "mode",
    "vault",
    "vault resources",
    "audit key",
    "pagerduty",
]


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with running_slack(scopes=SCOPES) as emulator:
        yield emulator


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyEmulator]:
    with running_pagerduty() as emulator:
        yield emulator


@pytest.fixture
def healthy(
    slack: SlackEmulator, pagerduty: PagerDutyEmulator, set_up_vault: SetUpVault, tmp_path: Path
) -> dict[str, Any]:
    database = f"sqlite:///{tmp_path / 'gatehouse.db'}"
    migrate.upgrade(database)
    return {
        "policy_path": ONCALL_EXAMPLE_POLICY,
        "pagerduty_token": pagerduty.token,
        "pagerduty_api_url": pagerduty.url,
        "slack_bot_token": slack.bot_token,
        "slack_app_token": "xapp-1-A0-1-abcdef",
        "slack_api_url": slack.api_url,
        "vault_addr": set_up_vault.emulator.url,
        "vault_auth": "approle",
        "vault_role_id": set_up_vault.role_id,
        "vault_secret_id": set_up_vault.secret_id,
        "database_url": database,
        "audit_signing_key": KEY,
    }


def checks(**values: Any) -> dict[str, Check]:
    return {check.name: check for check in run_checks(bot_settings(mode="socket", **values))}


def results(settings: Settings) -> dict[str, bool]:
    return {check.name: check.ok for check in run_checks(settings)}


def closed_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def doctor_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **environment: str) -> Any:
    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(app, ["doctor"])


def environment_of(healthy: dict[str, Any], policy: Path) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": healthy["slack_bot_token"],
        "SLACK_APP_TOKEN": healthy["slack_app_token"],
        "GATEHOUSE_SLACK_API_URL": healthy["slack_api_url"],
        "VAULT_ADDR": healthy["vault_addr"],
        "GATEHOUSE_VAULT_AUTH": "approle",
        "GATEHOUSE_VAULT_ROLE_ID": healthy["vault_role_id"],
        "GATEHOUSE_VAULT_SECRET_ID": healthy["vault_secret_id"],
        "DATABASE_URL": healthy["database_url"],
        "GATEHOUSE_AUDIT_SIGNING_KEY": KEY,
        "GATEHOUSE_POLICY": str(policy),
    }


def test_everything_in_place_passes_and_exits_zero(
    healthy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert all(results(bot_settings(mode="socket", **healthy)).values())
    environment = environment_of(healthy, ONCALL_EXAMPLE_POLICY)
    environment["GATEHOUSE_PAGERDUTY_TOKEN"] = healthy["pagerduty_token"]
    environment["GATEHOUSE_PAGERDUTY_API_URL"] = healthy["pagerduty_api_url"]
    monkeypatch.delenv("GATEHOUSE_PAGERDUTY_TOKEN", raising=False)

    result = doctor_cli(monkeypatch, tmp_path, **environment)

    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines()] == [
        f"✓ {name}" for name in CHECKS
    ]


def test_the_example_policy_passes_without_pagerduty(
    healthy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GATEHOUSE_PAGERDUTY_TOKEN", raising=False)

    result = doctor_cli(monkeypatch, tmp_path, **environment_of(healthy, EXAMPLE_POLICY))

    assert result.exit_code == 0, result.output
    assert "✓ pagerduty: the policy has no PagerDuty groups" in result.output


def test_each_failure_is_named_with_its_fix(
    healthy: dict[str, Any], set_up_vault: SetUpVault, tmp_path: Path
) -> None:
    unmigrated = tmp_path / "empty.db"
    migrate.upgrade(f"sqlite:///{unmigrated}", "base")
    assert results(
        bot_settings(mode="socket", **{**healthy, "database_url": f"sqlite:///{unmigrated}"})
    ) == {name: name != "database" for name in CHECKS}
    no_key = {k: v for k, v in healthy.items() if k != "audit_signing_key"}
    assert not checks(**no_key)["audit key"].ok
    assert not checks(**{**healthy, "audit_signing_key": "xyz"})["audit key"].ok
    bad_policy = tmp_path / "policy.yaml"
    bad_policy.write_text("version: 2\n")
    policy = checks(**{**healthy, "policy_path": bad_policy})["policy"]
    assert policy.failed and "gatehouse policy check" in policy.fix
    root = set_up_vault.root()
    root.sys.create_or_update_policy(
        "gatehouse", 'path "sys/capabilities-self" { capabilities = ["update"] }'
    )
    vault = checks(**healthy)["vault"]
    assert vault.failed and "auth/token/revoke-accessor (update)" in vault.detail


def test_a_variable_that_is_not_set_is_reported_once_by_settings(
    healthy: dict[str, Any],
) -> None:
    no_app_token = {k: v for k, v in healthy.items() if k != "slack_app_token"}
    found = checks(**no_app_token)

    assert found["settings"].failed and "SLACK_APP_TOKEN" in found["settings"].detail
    assert found["mode"].outcome is Outcome.SKIPPED and "SLACK_APP_TOKEN" in found["mode"].detail
    no_vault = {k: v for k, v in healthy.items() if k != "vault_secret_id"}
    found = checks(**no_vault)
    assert [c.name for c in found.values() if c.failed] == ["settings"]
    assert found["vault"].outcome is found["vault resources"].outcome is Outcome.SKIPPED


def test_a_root_token_has_every_capability(
    healthy: dict[str, Any], set_up_vault: SetUpVault
) -> None:
    """Vault answers capabilities-self for a root token with ["root"] on every path, which
    allows everything (hashicorp/vault, vault/acl_test.go, TestACL_Capabilities: the root
    policy's capabilities on "any/path" are []string{"root"}); the emulator answers the same."""
    root_token = set_up_vault.emulator.root_token
    answer = set_up_vault.root().sys.get_capabilities(paths=["auth/token/accessors/"])
    assert answer["data"]["auth/token/accessors/"] == ["root"]

    found = checks(**{**healthy, "vault_auth": "token", "vault_token": root_token})

    assert found["vault"].ok, found["vault"]
    assert found["vault resources"].ok, found["vault resources"]


def assert_one_shot(check: Check) -> None:
    """Doctor runs once: nothing it prints promises another try."""
    assert "retry" not in f"{check.detail} {check.fix}".lower(), check


def test_an_unreachable_vault_is_a_network_problem(healthy: dict[str, Any]) -> None:
    address = f"http://127.0.0.1:{closed_port()}"

    vault = checks(**{**healthy, "vault_addr": address})["vault"]

    assert vault.failed
    assert vault.detail == f"cannot reach Vault at {address}: Connection refused"
    assert vault.fix.startswith("network:") and "VAULT_ADDR" in vault.fix
    assert_one_shot(vault)


def test_a_refused_login_is_a_credentials_problem(healthy: dict[str, Any]) -> None:
    token = checks(**{**healthy, "vault_auth": "token", "vault_token": "hvs.not-a-token"})["vault"]
    assert token.failed and "refused" in token.detail and "permission denied" in token.detail
    assert token.fix.startswith("credentials:") and "VAULT_TOKEN" in token.fix
    assert "polic" not in token.detail  # a wrong token is not a missing capability

    approle = checks(**{**healthy, "vault_secret_id": "not-the-secret-id"})["vault"]
    assert approle.failed and "invalid role or secret ID" in approle.detail
    assert approle.fix.startswith("credentials:") and "GATEHOUSE_VAULT_SECRET_ID" in approle.fix
    for check in (token, approle):
        assert_one_shot(check)


def test_an_unreadable_service_account_token_is_named(
    healthy: dict[str, Any], tmp_path: Path
) -> None:
    missing = tmp_path / "token"
    kubernetes = {
        **healthy,
        "vault_auth": "kubernetes",
        "vault_kubernetes_role": "gatehouse",
        "vault_kubernetes_token_path": missing,
    }

    vault = checks(**kubernetes)["vault"]

    assert vault.failed
    assert vault.detail == f"cannot read the service account token at {missing}: " + (
        "No such file or directory"
    )
    assert "GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH" in vault.fix


def test_a_sealed_vault_is_named_sealed(healthy: dict[str, Any], set_up_vault: SetUpVault) -> None:
    """A sealed Vault answers every request with 503 "Vault is sealed"."""
    set_up_vault.emulator.fail_next(100, 503)

    vault = checks(**healthy)["vault"]

    assert vault.failed and vault.detail.endswith("is sealed")
    assert "unseal" in vault.fix and not vault.fix.startswith(("network", "credentials"))
    assert_one_shot(vault)


class _SealedHealth(BaseHTTPRequestHandler):
    """sys/health as a sealed Vault answers it: 503 with the health document."""

    def do_GET(self) -> None:
        body = json.dumps({"initialized": True, "sealed": True, "standby": True}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


def test_a_sealed_health_document_is_read_as_sealed(healthy: dict[str, Any]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SealedHealth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        address = f"http://127.0.0.1:{server.server_address[1]}"
        vault = checks(**{**healthy, "vault_addr": address})["vault"]
    finally:
        server.shutdown()
        server.server_close()
    assert vault.failed and vault.detail == f"Vault at {address} is sealed"


def test_vault_failing_after_it_answers_is_not_blamed_on_the_login(
    healthy: dict[str, Any], set_up_vault: SetUpVault
) -> None:
    set_up_vault.emulator.fail_next(100, 500, path_prefix="auth/approle/login")

    vault = checks(**healthy)["vault"]

    assert vault.failed and "internal error" in vault.detail
    assert "Vault itself is failing" in vault.fix
    assert_one_shot(vault)


def test_the_database_check_shows_the_drivers_reason(healthy: dict[str, Any]) -> None:
    port = closed_port()
    down = checks(**{**healthy, "database_url": f"postgresql://postgres@127.0.0.1:{port}/x"})[
        "database"
    ]
    assert down.failed and f"port {port} failed: Connection refused" in down.detail
    assert down.fix.startswith("network:")

    stranger = "postgresql://nobody_here@127.0.0.1:5432/postgres"
    refused = checks(**{**healthy, "database_url": stranger})["database"]
    assert refused.failed and 'role "nobody_here" does not exist' in refused.detail
    assert refused.fix.startswith("credentials:")
    for check in (down, refused):
        assert "OperationalError" not in check.detail
        assert_one_shot(check)


def test_a_missing_sqlite_database_is_named_and_not_created(
    healthy: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "nothing-here" / "gatehouse.db"
    url = f"sqlite:///{path}"
    assert sqlite_file_missing(url) == path
    assert sqlite_file_missing(healthy["database_url"]) is None
    assert sqlite_file_missing("postgresql://postgres@127.0.0.1/x") is None

    database = checks(**{**healthy, "database_url": url})["database"]

    assert database.failed and database.detail == f"no database at {path}"
    assert database.fix == "run `gatehouse db upgrade`"
    assert not path.parent.exists()
    beside = tmp_path / "not-yet.db"  # a folder that exists: opening the file would create it
    assert checks(**{**healthy, "database_url": f"sqlite:///{beside}"})["database"].failed
    assert not beside.exists()


def test_slack_refusing_or_unreachable_each_get_their_own_fix(
    healthy: dict[str, Any], slack: SlackEmulator
) -> None:
    address = f"http://127.0.0.1:{closed_port()}/api/"
    unreachable = checks(**{**healthy, "slack_api_url": address})["slack"]
    assert unreachable.failed and unreachable.detail.endswith(": Connection refused")
    assert unreachable.fix.startswith("network:")

    slack.revoke_token()
    refused = checks(**healthy)["slack"]
    assert refused.failed and refused.detail == "Slack refused SLACK_BOT_TOKEN: token_revoked"
    assert refused.fix.startswith("credentials:") and "SLACK_BOT_TOKEN" in refused.fix


def test_a_missing_policy_is_reported_once_and_nothing_depending_on_it_passes(
    healthy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "policy.yaml"
    environment = environment_of(healthy, missing)

    result = doctor_cli(monkeypatch, tmp_path, **environment)

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line for line in lines if line.startswith("✗")] == [
        f"✗ policy: no policy file at {missing}"
    ]
    assert "– vault resources: not checked: the policy did not load" in lines
    assert "– pagerduty: not checked: the policy did not load" in lines
    assert not [line for line in lines if "pagerduty" in line and line.startswith("✓")]


def test_nothing_doctor_prints_promises_a_retry(
    healthy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = environment_of(healthy, ONCALL_EXAMPLE_POLICY)
    environment["VAULT_ADDR"] = f"http://127.0.0.1:{closed_port()}"
    environment["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{closed_port()}/x"
    environment["GATEHOUSE_PAGERDUTY_TOKEN"] = healthy["pagerduty_token"]
    environment["GATEHOUSE_PAGERDUTY_API_URL"] = f"http://127.0.0.1:{closed_port()}"

    result = doctor_cli(monkeypatch, tmp_path, **environment)

    assert result.exit_code == 1
    assert "retry" not in result.output.lower()
    assert "✗ pagerduty: PagerDuty could not be reached" in result.output
    assert "network: check that this host may reach http://127.0.0.1:" in result.output


def test_pagerduty_missing_or_refusing_is_named_with_its_fix(
    healthy: dict[str, Any], pagerduty: PagerDutyEmulator
) -> None:
    no_token = {k: v for k, v in healthy.items() if k != "pagerduty_token"}
    missing = checks(**no_token)["pagerduty"]
    assert missing.failed
    assert "GATEHOUSE_PAGERDUTY_TOKEN is not set: empty on-call groups ml-primary" in (
        missing.detail
    )
    pagerduty.revoke_token()
    refused = checks(**healthy)["pagerduty"]
    assert refused.failed and "(401)" in refused.detail
    assert refused.fix.startswith("credentials:")
    unused = checks(**{**no_token, "policy_path": EXAMPLE_POLICY})["pagerduty"]
    assert unused.ok


def test_incident_tokens_must_outlive_the_longest_access(
    healthy: dict[str, Any], set_up_vault: SetUpVault, tmp_path: Path
) -> None:
    """setup.sh caps incident tokens at 24h; a grant token dies with its incident token."""
    long = tmp_path / "policy.yaml"
    long.write_text(
        EXAMPLE_POLICY.read_text(encoding="utf-8").replace("max_ttl: 4h", "max_ttl: 2d"),
        encoding="utf-8",
    )

    found = checks(**{**healthy, "policy_path": long})["vault resources"]

    assert found.failed
    assert "incident tokens live at most 1d (token role gatehouse-incident)" in found.detail
    assert "inference-logs-ro may be granted for 2d" in found.detail
    assert "lower max_ttl to at most 23h50m" in found.fix
    assert "GATEHOUSE_INCIDENT_TOKEN_MAX_TTL=48h10m or more" in found.fix

    set_up_vault.root().write("auth/token/roles/gatehouse-incident", token_explicit_max_ttl="49h")
    assert checks(**{**healthy, "policy_path": long})["vault resources"].ok


def test_a_token_missing_scopes_is_caught(set_up_vault: SetUpVault, tmp_path: Path) -> None:
    with running_slack(scopes=["chat:write"]) as narrow:
        database = f"sqlite:///{tmp_path / 'gatehouse.db'}"
        migrate.upgrade(database)
        settings = bot_settings(
            mode="socket",
            slack_bot_token=narrow.bot_token,
            slack_app_token="xapp-1-A0-1-abc",
            slack_api_url=narrow.api_url,
            vault_addr=set_up_vault.emulator.url,
            vault_auth="approle",
            vault_role_id=set_up_vault.role_id,
            vault_secret_id=set_up_vault.secret_id,
            database_url=database,
        )
        slack = {c.name: c for c in run_checks(settings)}["slack"]
    assert slack.failed and "pins:write" in slack.detail


def test_each_configured_audit_sink_is_checked(tmp_path: Path) -> None:
    database = {"database_url": f"sqlite:///{tmp_path / 'gatehouse.db'}"}
    assert not [c for c in run_checks(bot_settings(**database)) if "sink" in c.name]
    with running_receiver() as receiver:
        sinks = {
            "audit_webhook_url": receiver.webhook_url,
            "audit_webhook_secret": receiver.webhook_secret,
            "splunk_hec_url": receiver.hec_url,
            "splunk_hec_token": receiver.hec_token,
        }
        found = {c.name: c for c in run_checks(bot_settings(**database, **sinks))}
        assert found["audit sink webhook"].ok and found["audit sink splunk"].ok
        assert receiver.accepted == [], "the checks deliver nothing"

        wrong = {**sinks, "audit_webhook_secret": "wrong", "splunk_hec_token": "wrong"}
        found = {c.name: c for c in run_checks(bot_settings(**database, **wrong))}
        for name, variable in (("webhook", "WEBHOOK_SECRET"), ("splunk", "SPLUNK_HEC_TOKEN")):
            check = found[f"audit sink {name}"]
            assert check.failed and variable in check.detail and "correct" in check.fix

        receiver.stop()
        found = {c.name: c for c in run_checks(bot_settings(**database, **sinks))}
        for name in ("webhook", "splunk"):
            check = found[f"audit sink {name}"]
            assert check.failed and check.fix.startswith("network:")

    half = bot_settings(**database, audit_webhook_url="https://siem.example/hook")
    found = {c.name: c for c in run_checks(half)}
    assert found["audit sinks"].outcome is Outcome.SKIPPED
    assert "GATEHOUSE_AUDIT_WEBHOOK_SECRET" in found["audit sinks"].detail
    assert "GATEHOUSE_AUDIT_WEBHOOK_SECRET" in found["settings"].detail
