"""`gatehouse run` checks everything it can offline first: every problem in one run, one line
each (`NAME: what is wrong — how to fix`), nothing created and no connection opened."""

from pathlib import Path

import pytest

from bot import bootstrap
from bot.config import Problem, Settings
from integrations.audit_signing import new_key

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_POLICY = str(REPO / "deploy" / "policy.example.yaml")
COMPLETE = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_APP_TOKEN": "xapp-1-A-1-abc",
    "VAULT_ADDR": "http://127.0.0.1:8200",
    "VAULT_TOKEN": "hvs.bot",
    "GATEHOUSE_POLICY": EXAMPLE_POLICY,
}


@pytest.fixture(autouse=True)
def empty_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Gatehouse variable set, in an empty directory (no .env, no policy.yaml)."""
    for field in Settings.model_fields.values():
        if isinstance(field.validation_alias, str):
            monkeypatch.delenv(field.validation_alias, raising=False)
    monkeypatch.chdir(tmp_path)


def problems(monkeypatch: pytest.MonkeyPatch, **environment: str) -> list[Problem]:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    _, found = bootstrap.preflight(env_file=None)
    for problem in found:  # one line each, its fix included
        assert "\n" not in str(problem)
        assert str(problem).startswith(f"{problem.variable}: ")
        assert problem.what and problem.fix
    return found


def variables(found: list[Problem]) -> list[str]:
    return [problem.variable for problem in found]


def test_a_complete_configuration_has_no_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(monkeypatch, **COMPLETE) == []


def test_nothing_set_lists_every_missing_setting_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = problems(monkeypatch)
    assert variables(found) == [
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "GATEHOUSE_POLICY",
    ]
    assert "xoxb-" in found[0].fix and "connections:write" in found[1].fix
    assert "policy.example.yaml" in found[4].fix
    assert list(tmp_path.iterdir()) == []  # no database file, nothing at all


def test_http_mode_needs_the_signing_secret_instead_of_the_app_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    http = {name: value for name, value in COMPLETE.items() if name != "SLACK_APP_TOKEN"}
    found = problems(monkeypatch, **http, GATEHOUSE_MODE="http")
    assert [str(problem) for problem in found] == [
        "SLACK_SIGNING_SECRET: not set (GATEHOUSE_MODE=http) — copy the Slack app's Signing "
        "Secret (Basic Information → App Credentials); or use Socket Mode with "
        "GATEHOUSE_MODE=socket"
    ]


def test_every_malformed_setting_is_listed_and_the_other_checks_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = problems(
        monkeypatch,
        GATEHOUSE_PORT="eighty",
        GATEHOUSE_MODE="ftp",
        SLACK_BOT_TOKEN="xoxp-a-user-token",
        VAULT_ADDR="vault:8200",
        GATEHOUSE_VAULT_WRAP_TTL="soon",
    )
    lines = {problem.variable: str(problem) for problem in found}
    assert set(lines) == {
        "GATEHOUSE_PORT",
        "GATEHOUSE_MODE",
        "SLACK_BOT_TOKEN",
        "VAULT_ADDR",
        "GATEHOUSE_VAULT_WRAP_TTL",
        "VAULT_TOKEN",  # still checked: it is missing too
        "GATEHOUSE_POLICY",  # still checked: no policy.yaml here
    }
    assert len(found) == len(lines)  # a malformed variable is not also reported missing
    assert "'eighty'" in lines["GATEHOUSE_PORT"]
    assert "must start with http" in lines["VAULT_ADDR"]
    assert "a-user-token" not in lines["SLACK_BOT_TOKEN"]  # a secret is never echoed
    # The mode is unknown, so neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is demanded.


def test_each_problem_of_the_policy_is_a_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nresources: 3\n")
    found = problems(monkeypatch, **{**COMPLETE, "GATEHOUSE_POLICY": str(policy)})
    assert [problem.what for problem in found] == [
        f"{policy}: resources: must be a mapping of names to settings (got 3)",
        f"{policy}: groups: missing: this key is required",
    ]
    assert all(problem.variable == "GATEHOUSE_POLICY" for problem in found)
    assert f"gatehouse policy check {policy}" in found[0].fix


def test_a_policy_that_is_not_a_mapping_is_named_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("- just\n- a list\n")
    (found,) = problems(monkeypatch, **{**COMPLETE, "GATEHOUSE_POLICY": str(policy)})
    assert found.what.startswith(f"{policy}: the top level must be a mapping")


def test_vault_login_settings_follow_the_method(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    approle = {name: value for name, value in COMPLETE.items() if name != "VAULT_TOKEN"}
    approle |= {"GATEHOUSE_VAULT_AUTH": "approle", "GATEHOUSE_VAULT_ROLE_ID": "role"}
    assert variables(problems(monkeypatch, **approle)) == ["GATEHOUSE_VAULT_SECRET_ID"]
    monkeypatch.delenv("GATEHOUSE_VAULT_ROLE_ID")
    kubernetes = {**COMPLETE, "GATEHOUSE_VAULT_AUTH": "kubernetes"}
    kubernetes["GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH"] = str(tmp_path / "absent")
    assert variables(problems(monkeypatch, **kubernetes)) == [
        "GATEHOUSE_VAULT_KUBERNETES_ROLE",
        "GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH",
    ]


def test_a_missing_vault_ca_bundle_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (found,) = problems(monkeypatch, **COMPLETE, VAULT_CACERT=str(tmp_path / "ca.pem"))
    assert found.variable == "VAULT_CACERT" and "no file at" in found.what


def test_an_audit_sink_without_its_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(
        monkeypatch,
        **COMPLETE,
        GATEHOUSE_AUDIT_WEBHOOK_URL="https://siem.example.com/hook",
        GATEHOUSE_SPLUNK_HEC_URL="https://splunk.example.com:8088",
    )
    assert variables(found) == ["GATEHOUSE_AUDIT_WEBHOOK_SECRET", "GATEHOUSE_SPLUNK_HEC_TOKEN"]
    assert "GATEHOUSE_AUDIT_WEBHOOK_URL" in found[0].what


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("postgresql://gatehouse:Sup3rS3cret@db:fivefourthreetwo/gatehouse", "port is not a"),
        ("postgresql://gatehouse:Sup3rS3cret@db:99999/gatehouse", "port 99999 is out of range"),
        ("postgresql:/Sup3rS3cret", "not a database URL"),
        ("sqlite:///no/such/directory/gatehouse.db", "the directory no/such/directory"),
        ("sqlite://", "an in-memory SQLite database"),
    ],
)
def test_a_malformed_database_url_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, url: str, what: str
) -> None:
    (found,) = problems(monkeypatch, **COMPLETE, DATABASE_URL=url)
    assert found.variable == "DATABASE_URL"
    assert what in found.what
    assert "Sup3rS3cret" not in str(found)


def test_an_audit_signing_key_that_is_not_a_key_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (found,) = problems(monkeypatch, **COMPLETE, GATEHOUSE_AUDIT_SIGNING_KEY="not-a-key")
    assert found.variable == "GATEHOUSE_AUDIT_SIGNING_KEY" and "keygen" in found.fix
    assert problems(monkeypatch, **COMPLETE, GATEHOUSE_AUDIT_SIGNING_KEY=new_key()[0]) == []


def test_every_kind_of_problem_shows_in_one_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = problems(
        monkeypatch,
        GATEHOUSE_PORT="eighty",
        DATABASE_URL="sqlite:///missing/gatehouse.db",
        GATEHOUSE_AUDIT_WEBHOOK_URL="https://siem.example.com/hook",
        GATEHOUSE_AUDIT_SIGNING_KEY="not-a-key",
    )
    assert variables(found) == [
        "GATEHOUSE_PORT",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "GATEHOUSE_AUDIT_WEBHOOK_SECRET",
        "DATABASE_URL",
        "GATEHOUSE_POLICY",
        "GATEHOUSE_AUDIT_SIGNING_KEY",
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_start_line_names_mode_address_and_database_without_its_password() -> None:
    http = Settings(
        _env_file=None,
        mode="http",
        host="127.0.0.1",
        port=8080,
        database_url="postgresql://gatehouse:Sup3rS3cret@db:5432/gatehouse",
    )
    assert bootstrap.started_line(http) == (
        "Gatehouse started: HTTP mode, listening on 127.0.0.1:8080, "
        "database postgresql://gatehouse:***@db:5432/gatehouse"
    )
    socket_mode = Settings(_env_file=None, database_url="sqlite:///var/gatehouse.db")
    assert bootstrap.started_line(socket_mode) == (
        "Gatehouse started: Socket Mode, no listening port, database sqlite:///var/gatehouse.db"
    )


def test_values_left_from_the_env_template_are_refused_without_being_echoed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A `.env` copied from deploy/.env.example and not filled in: each placeholder is named
    (as compose's preflight does), the other settings are still checked."""
    template = (REPO / "deploy" / ".env.example").read_text(encoding="utf-8")
    (tmp_path / ".env").write_text(template, encoding="utf-8")
    monkeypatch.setenv("GATEHOUSE_POLICY", EXAMPLE_POLICY)

    _, found = bootstrap.preflight(env_file=tmp_path / ".env")

    placeholders = [p for p in found if "placeholder" in p.what]
    assert [p.variable for p in placeholders] == ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"]
    assert all("your-" not in str(problem) for problem in found)
    assert {"VAULT_ADDR", "VAULT_TOKEN"} <= set(variables(found))
