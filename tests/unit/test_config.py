from datetime import timedelta
from pathlib import Path

import pytest

from bot.bootstrap import NotReady, build_sinks
from bot.config import SettingsError, load_settings

VARIABLES = [
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "DATABASE_URL",
    "GATEHOUSE_POLICY",
    "GATEHOUSE_MODE",
    "GATEHOUSE_PORT",
    "GATEHOUSE_SLACK_API_URL",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_house_plan() -> None:
    settings = load_settings(env_file=None)
    assert settings.database_url == "sqlite:///gatehouse.db"
    assert settings.policy_path == Path("policy.yaml")
    assert settings.mode == "socket"
    assert settings.missing_for_run() == ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"]


def test_reads_every_variable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s3cr3t",
        "VAULT_ADDR": "http://127.0.0.1:8200/",
        "VAULT_TOKEN": "hvs.x",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1/test",
        "GATEHOUSE_POLICY": "/etc/p.yaml",
        "GATEHOUSE_MODE": "http",
        "GATEHOUSE_PORT": "8080",
        "GATEHOUSE_SLACK_API_URL": "http://127.0.0.1:9999/api/",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(env_file=None)
    assert settings.vault_addr == "http://127.0.0.1:8200"
    assert settings.port == 8080
    assert settings.policy_path == Path("/etc/p.yaml")
    assert settings.slack_api_url == "http://127.0.0.1:9999/api"
    assert settings.missing_for_run() == []


def test_reads_dot_env(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GATEHOUSE_MODE=http\nGATEHOUSE_PORT=4000\n")
    settings = load_settings(env_file=env)
    assert (settings.mode, settings.port) == ("http", 4000)
    assert settings.missing_for_run() == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GATEHOUSE_MODE", "ftp", "GATEHOUSE_MODE: Input should be 'socket' or 'http'"),
        ("GATEHOUSE_PORT", "eighty", "GATEHOUSE_PORT:"),
        ("GATEHOUSE_PORT", "70000", "GATEHOUSE_PORT:"),
        ("VAULT_ADDR", "vault:8200", "VAULT_ADDR: must start with http"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: must be a sqlite"),
        ("SLACK_BOT_TOKEN", "xoxp-user-token", "SLACK_BOT_TOKEN: must be a bot token"),
        ("SLACK_APP_TOKEN", "xoxb-wrong", "SLACK_APP_TOKEN: must be an app-level token"),
    ],
)
def test_malformed_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None)
    assert message in str(error.value)


def test_secret_values_never_appear_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxp-do-not-print-me")
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None)
    assert "do-not-print-me" not in str(error.value)


def test_vault_login_needs_depend_on_the_method(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GATEHOUSE_VAULT_AUTH",
        "GATEHOUSE_VAULT_ROLE_ID",
        "GATEHOUSE_VAULT_SECRET_ID",
        "GATEHOUSE_VAULT_KUBERNETES_ROLE",
        "GATEHOUSE_VAULT_WRAP_TTL",
    ):
        monkeypatch.delenv(name, raising=False)
    assert load_settings(env_file=None).missing_for_vault() == ["VAULT_ADDR", "VAULT_TOKEN"]
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("GATEHOUSE_VAULT_AUTH", "approle")
    monkeypatch.setenv("GATEHOUSE_VAULT_ROLE_ID", "role")
    assert load_settings(env_file=None).missing_for_vault() == ["GATEHOUSE_VAULT_SECRET_ID"]
    monkeypatch.setenv("GATEHOUSE_VAULT_AUTH", "kubernetes")
    assert load_settings(env_file=None).missing_for_vault() == ["GATEHOUSE_VAULT_KUBERNETES_ROLE"]


def test_wrap_ttl_is_a_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_VAULT_WRAP_TTL", "90s")
    assert load_settings(env_file=None).vault_wrap_ttl == timedelta(seconds=90)
    monkeypatch.setenv("GATEHOUSE_VAULT_WRAP_TTL", "soon")
    with pytest.raises(SettingsError, match="GATEHOUSE_VAULT_WRAP_TTL: 'soon' is not a duration"):
        load_settings(env_file=None)


SINK_VARIABLES = (
    "GATEHOUSE_AUDIT_WEBHOOK_URL",
    "GATEHOUSE_AUDIT_WEBHOOK_SECRET",
    "GATEHOUSE_SPLUNK_HEC_URL",
    "GATEHOUSE_SPLUNK_HEC_TOKEN",
    "GATEHOUSE_SPLUNK_HEC_INDEX",
    "GATEHOUSE_SPLUNK_HEC_SOURCE",
)


def test_no_sink_is_configured_by_default_and_a_url_needs_its_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in SINK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(env_file=None)
    assert settings.missing_for_sinks() == []
    assert build_sinks(settings) == []
    monkeypatch.setenv("GATEHOUSE_AUDIT_WEBHOOK_URL", "https://siem.example/hook/")
    monkeypatch.setenv("GATEHOUSE_SPLUNK_HEC_URL", "https://splunk.example:8088/")
    settings = load_settings(env_file=None)
    assert settings.audit_webhook_url == "https://siem.example/hook/", "kept as given"
    assert settings.splunk_hec_source == "gatehouse"
    assert settings.missing_for_sinks() == [
        "GATEHOUSE_AUDIT_WEBHOOK_SECRET",
        "GATEHOUSE_SPLUNK_HEC_TOKEN",
    ]
    with pytest.raises(NotReady, match="GATEHOUSE_AUDIT_WEBHOOK_SECRET"):
        build_sinks(settings)
    monkeypatch.setenv("GATEHOUSE_AUDIT_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("GATEHOUSE_SPLUNK_HEC_TOKEN", "t0ken")
    sinks = build_sinks(load_settings(env_file=None))
    assert [sink.name for sink in sinks] == ["webhook", "splunk"]
    for sink in sinks:
        sink.close()


def test_a_bad_sink_url_is_named_but_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_AUDIT_WEBHOOK_URL", "siem.example/hook?token=do-not-print-me")
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None)
    assert "GATEHOUSE_AUDIT_WEBHOOK_URL: must start with http" in str(error.value)
    assert "do-not-print-me" not in str(error.value)
    monkeypatch.delenv("GATEHOUSE_AUDIT_WEBHOOK_URL")
    monkeypatch.setenv("GATEHOUSE_SPLUNK_HEC_TOKEN", "do-not-print-me")
    monkeypatch.setenv("GATEHOUSE_SPLUNK_HEC_SOURCE", "")
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None)
    assert "GATEHOUSE_SPLUNK_HEC_SOURCE" in str(error.value)
    assert "do-not-print-me" not in str(error.value)
