"""`gatehouse policy check | explain | schema` through the real Typer app."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# The on-call example: the plain one plus PagerDuty and Slack user groups.
EXAMPLE = DEPLOY / "policy.oncall.example.yaml"
EXAMPLES = {"policy.example.yaml": 4, "policy.oncall.example.yaml": 6}

runner = CliRunner(env={"GATEHOUSE_POLICY": None})


@pytest.fixture
def broken_policy(tmp_path: Path) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    doc["resources"]["feature-store-rw"]["default_ttl"] = "3h"
    doc["resources"]["feature-store-rw"]["approvers"] = ["ml-leads", "securty"]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "groups"), EXAMPLES.items())
def test_check_valid_file(name: str, groups: int) -> None:
    example = DEPLOY / name
    result = runner.invoke(app, ["policy", "check", str(example)])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"✓ {example} is valid: 3 resources, {groups} groups"


def test_check_lists_every_problem_and_fails(broken_policy: Path) -> None:
    result = runner.invoke(app, ["policy", "check", str(broken_policy)])

    assert result.exit_code == 1
    assert "has 2 problems" in result.stderr
    assert "resources.feature-store-rw.default_ttl: default_ttl (3h)" in result.stderr
    assert "resources.feature-store-rw.approvers: unknown group 'securty'" in result.stderr
    assert "is valid" not in result.output


def test_check_reads_the_file_from_the_environment() -> None:
    result = runner.invoke(app, ["policy", "check"], env={"GATEHOUSE_POLICY": str(EXAMPLE)})

    assert result.exit_code == 0, result.output
    assert "is valid" in result.stdout


def test_check_defaults_to_policy_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app, ["policy", "check"])

    assert result.exit_code == 1
    assert "policy.yaml: file not found" in result.stderr


def test_explain_known_resource() -> None:
    result = runner.invoke(
        app, ["policy", "explain", "serving-cluster-exec", "--policy", str(EXAMPLE)]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("serving-cluster-exec: kubectl exec into model-serving pods")
    assert "ml-leads (U0LEAD1, U0LEAD2, U0LEAD3)" in result.stdout
    assert "up to 15m" in result.stdout


def test_explain_unknown_resource_lists_the_known_ones() -> None:
    result = runner.invoke(app, ["policy", "explain", "gpu-nodes", "--policy", str(EXAMPLE)])

    assert result.exit_code == 1
    assert "There is no resource called 'gpu-nodes'" in result.stderr
    assert "feature-store-rw, inference-logs-ro, serving-cluster-exec" in result.stderr


def test_explain_with_an_invalid_policy_shows_its_problems(broken_policy: Path) -> None:
    result = runner.invoke(
        app, ["policy", "explain", "feature-store-rw", "--policy", str(broken_policy)]
    )

    assert result.exit_code == 1
    assert "resources.feature-store-rw.default_ttl" in result.stderr
    assert result.stdout == ""


def test_schema_is_json_describing_the_document() -> None:
    result = runner.invoke(app, ["policy", "schema"])

    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"version", "incident", "groups", "resources"}
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_file_validates_against_the_schema(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(runner.invoke(app, ["policy", "schema"]).stdout)

    jsonschema.validate(yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8")), schema)


def test_explain_for_a_user_without_slack_says_what_cannot_be_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("SLACK_BOT_TOKEN", "GATEHOUSE_PAGERDUTY_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    result = runner.invoke(
        app, ["policy", "explain", "inference-logs-ro", "--policy", str(EXAMPLE), "--user", "U0A"]
    )

    assert result.exit_code == 0, result.output
    assert "SLACK_BOT_TOKEN is not set" in result.stderr
    assert "May request:        no: not a member of ml-oncall" in result.stdout
    assert "Auto-approved:      no: U0A may not request inference-logs-ro" in result.stdout
    assert "PagerDuty is not configured" in result.stdout


def test_explain_for_a_user_of_a_resource_without_dynamic_groups_looks_nothing_up() -> None:
    result = runner.invoke(
        app,
        ["policy", "explain", "feature-store-rw", "--policy", str(EXAMPLE), "--user", "U0ONCALL1"],
        env={"SLACK_BOT_TOKEN": "not-a-bot-token"},  # would fail settings if they were read
    )

    assert result.exit_code == 0, result.output
    assert "May request:        yes: member of ml-oncall" in result.stdout
    assert "Who could approve:  ml-leads (U0LEAD1, U0LEAD2, U0LEAD3); security" in result.stdout
    assert "Auto-approved:      no: feature-store-rw has no on-call auto-approval" in result.stdout
