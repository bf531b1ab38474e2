"""`gatehouse config`: docs/configuration.md is generated and current; values hide secrets."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot import config as bot_config
from bot.cli import app
from bot.cli.config import REGENERATE, markdown, variables
from bot.config import Settings, SettingsError, load_settings
from tests.unit.deploy.helpers import REPO, settings_variables

CONFIGURATION_MD = REPO / "docs" / "configuration.md"
runner = CliRunner()


def test_committed_configuration_md_is_current() -> None:
    committed = CONFIGURATION_MD.read_text(encoding="utf-8") if CONFIGURATION_MD.exists() else ""
    assert committed == markdown(), (
        f"docs/configuration.md is stale: run `make docs` (or `.venv/bin/{REGENERATE}`) "
        "and commit the result"
    )


def test_markdown_flag_prints_the_reference_without_reading_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEHOUSE_MODE", "not-a-mode")  # would stop any command reading settings
    result = runner.invoke(app, ["config", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.output == markdown()


def test_every_variable_is_documented_with_a_description() -> None:
    documented = {variable.name for variable in variables()}
    assert documented == settings_variables()
    reference = markdown()
    for variable in variables():
        assert variable.description, f"Settings.{variable.field} needs Field(description=...)"
        assert f"| `{variable.name}` |" in reference


def test_required_comes_from_the_checks_run_makes() -> None:
    required = {variable.name: variable.required for variable in variables()}
    assert required["SLACK_BOT_TOKEN"] == "yes"
    assert required["VAULT_ADDR"] == "yes"
    assert required["SLACK_APP_TOKEN"] == "when `GATEHOUSE_MODE=socket`"
    assert required["SLACK_SIGNING_SECRET"] == "when `GATEHOUSE_MODE=http`"
    assert required["VAULT_TOKEN"] == "when `GATEHOUSE_VAULT_AUTH=token`"
    assert required["GATEHOUSE_VAULT_SECRET_ID"] == "when `GATEHOUSE_VAULT_AUTH=approle`"
    assert required["GATEHOUSE_VAULT_KUBERNETES_ROLE"] == "when `GATEHOUSE_VAULT_AUTH=kubernetes`"
    assert required["GATEHOUSE_PORT"] == "no"


def test_types_and_defaults_come_from_the_fields() -> None:
    by_name = {variable.name: variable for variable in variables()}
    assert by_name["GATEHOUSE_PORT"].kind == "integer, ≥ 1 and ≤ 65535"
    assert by_name["GATEHOUSE_PORT"].default == str(Settings.model_fields["port"].default)
    assert by_name["GATEHOUSE_VAULT_TIMEOUT"].kind == "number, > 0 and ≤ 300"
    assert by_name["GATEHOUSE_VAULT_WRAP_TTL"].default == "5m"
    assert by_name["GATEHOUSE_MODE"].kind == "one of `socket`, `http`"
    assert by_name["SLACK_BOT_TOKEN"].default == ""


def test_every_secret_stays_out_of_error_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = {variable.name for variable in variables() if variable.secret != "no"}
    assert {"SLACK_BOT_TOKEN", "VAULT_TOKEN", "DATABASE_URL"} <= secret
    assert secret <= bot_config._SECRET_VARIABLES
    monkeypatch.setenv("DATABASE_URL", "postgres://app:hunter2@db.internal/gatehouse")
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None)
    assert "DATABASE_URL" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_config_shows_values_and_sources_and_hides_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in settings_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "GATEHOUSE_MODE=http\nSLACK_SIGNING_SECRET=signing-do-not-print\n", encoding="utf-8"
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-do-not-print")
    monkeypatch.setenv("DATABASE_URL", "postgresql://gatehouse:pw-do-not-print@db:5432/gh")

    result = runner.invoke(app, ["config"])

    assert result.exit_code == 0, result.output
    assert "do-not-print" not in result.output
    rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in result.output.splitlines()}
    assert rows["SLACK_BOT_TOKEN"] == "set (hidden)  (environment)"
    assert rows["SLACK_SIGNING_SECRET"] == "set (hidden)  (.env)"
    assert rows["SLACK_APP_TOKEN"] == "not set  (default)"
    assert rows["GATEHOUSE_MODE"] == "http  (.env)"
    assert rows["GATEHOUSE_PORT"] == "3000  (default)"
    assert rows["DATABASE_URL"] == "postgresql://gatehouse:[redacted]@db:5432/gh  (environment)"
    assert set(rows) == settings_variables()


def test_config_with_a_bad_variable_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEHOUSE_PORT", "eighty")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "GATEHOUSE_PORT:" in result.output
