"""`gatehouse doctor` against the emulators: every check passes, then each one fails alone."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.doctor import BOT_SCOPES, run_checks
from bot.config import Settings
from bot.store import migrate
from integrations.audit_signing import new_key
from tests.emulators.pagerduty import PagerDutyEmulator, running_pagerduty
from tests.emulators.sinks import running_receiver
from tests.emulators.slack import SlackEmulator, running_slack
from tests.harness import bot_settings
from tests.tools.vault_setup import SetUpVault

KEY = new_key()[0]
SCOPES = sorted(BOT_SCOPES)


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


def results(settings: Settings) -> dict[str, bool]:
    return {check.name: check.ok for check in run_checks(settings)}


def test_everything_in_place_passes_and_exits_zero(
    healthy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert all(results(bot_settings(mode="socket", **healthy)).values())
    monkeypatch.chdir(tmp_path)
    environment = {
        "SLACK_BOT_TOKEN": healthy["slack_bot_token"],
        "SLACK_APP_TOKEN": healthy["slack_app_token"],
        "GATEHOUSE_SLACK_API_URL": healthy["slack_api_url"],
        "VAULT_ADDR": healthy["vault_addr"],
        "GATEHOUSE_VAULT_AUTH": "approle",
        "GATEHOUSE_VAULT_ROLE_ID": healthy["vault_role_id"],
        "GATEHOUSE_VAULT_SECRET_ID": healthy["vault_secret_id"],
        "DATABASE_URL": healthy["database_url"],
        "GATEHOUSE_AUDIT_SIGNING_KEY": KEY,
        "GATEHOUSE_PAGERDUTY_TOKEN": healthy["pagerduty_token"],
        "GATEHOUSE_PAGERDUTY_API_URL": healthy["pagerduty_api_url"],
        "GATEHOUSE_POLICY": str(Path(__file__).parents[2] / "deploy/policy.example.yaml"),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == 8


def test_each_failure_is_named_with_its_fix(
    healthy: dict[str, Any], set_up_vault: SetUpVault, tmp_path: Path
) -> None:
    unmigrated = {**healthy, "database_url": f"sqlite:///{tmp_path / 'empty.db'}"}
    assert results(bot_settings(mode="socket", **unmigrated)) == {
        "settings": True,
        "policy": True,
        "database": False,
        "slack": True,
        "mode": True,
        "vault": True,
        "audit key": True,
        "pagerduty": True,
    }
    no_key = {k: v for k, v in healthy.items() if k != "audit_signing_key"}
    assert not results(bot_settings(mode="socket", **no_key))["audit key"]
    broken_key = {**healthy, "audit_signing_key": "xyz"}
    assert not results(bot_settings(mode="socket", **broken_key))["audit key"]
    no_app_token = {k: v for k, v in healthy.items() if k != "slack_app_token"}
    failed = {c.name: c for c in run_checks(bot_settings(mode="socket", **no_app_token))}
    assert not failed["mode"].ok and "SLACK_APP_TOKEN" in failed["mode"].fix
    assert not failed["settings"].ok
    bad_policy = tmp_path / "policy.yaml"
    bad_policy.write_text("version: 2\n")
    assert not results(bot_settings(mode="socket", policy_path=bad_policy, **healthy))["policy"]
    root = set_up_vault.root()
    root.sys.create_or_update_policy(
        "gatehouse", 'path "sys/capabilities-self" { capabilities = ["update"] }'
    )
    vault = {c.name: c for c in run_checks(bot_settings(mode="socket", **healthy))}["vault"]
    assert not vault.ok and "auth/token/revoke-accessor (update)" in vault.detail


def test_pagerduty_missing_or_refusing_is_named_with_its_fix(
    healthy: dict[str, Any], pagerduty: PagerDutyEmulator, tmp_path: Path
) -> None:
    no_token = {k: v for k, v in healthy.items() if k != "pagerduty_token"}
    missing = {c.name: c for c in run_checks(bot_settings(mode="socket", **no_token))}
    assert not missing["pagerduty"].ok
    assert "GATEHOUSE_PAGERDUTY_TOKEN is not set: empty on-call groups ml-primary" in (
        missing["pagerduty"].detail
    )
    pagerduty.revoke_token()
    refused = {c.name: c for c in run_checks(bot_settings(mode="socket", **healthy))}
    assert not refused["pagerduty"].ok and "(401)" in refused["pagerduty"].detail
    without = tmp_path / "policy.yaml"
    without.write_text(
        (Path(__file__).parents[2] / "deploy/policy.example.yaml")
        .read_text()
        .replace("  ml-primary:       {pagerduty_schedule: P7ML0NC}", "")
        .replace("    auto_approve: {oncall: ml-primary}", ""),
    )
    unused = run_checks(bot_settings(mode="socket", policy_path=without, **no_token))
    assert {c.name: c.ok for c in unused}["pagerduty"]


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
    assert not slack.ok and "pins:write" in slack.detail


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
        checks = {c.name: c for c in run_checks(bot_settings(**database, **sinks))}
        assert checks["audit sink webhook"].ok and checks["audit sink splunk"].ok
        assert receiver.accepted == [], "the checks deliver nothing"

        wrong = {**sinks, "audit_webhook_secret": "wrong", "splunk_hec_token": "wrong"}
        checks = {c.name: c for c in run_checks(bot_settings(**database, **wrong))}
        for name, variable in (("webhook", "WEBHOOK_SECRET"), ("splunk", "SPLUNK_HEC_TOKEN")):
            check = checks[f"audit sink {name}"]
            assert not check.ok and variable in check.detail and "correct" in check.fix

        receiver.stop()
        checks = {c.name: c for c in run_checks(bot_settings(**database, **sinks))}
        for name in ("webhook", "splunk"):
            check = checks[f"audit sink {name}"]
            assert not check.ok and "up" in check.fix

    half = bot_settings(**database, audit_webhook_url="https://siem.example/hook")
    checks = {c.name: c for c in run_checks(half)}
    assert (
        not checks["audit sinks"].ok
        and "GATEHOUSE_AUDIT_WEBHOOK_SECRET" in checks["audit sinks"].detail
    )
    assert "GATEHOUSE_AUDIT_WEBHOOK_SECRET" in checks["settings"].detail
