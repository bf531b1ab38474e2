"""`gatehouse policy test`: the shipped expectations hold, and failing or broken ones say why."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.policy import PolicyError, load_policy
from bot.policy.cases import check_cases, load_cases, run_cases

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# The on-call example asks every kind of expectation; the plain one all but auto_approved.
EXAMPLE = DEPLOY / "policy.oncall.example.yaml"
EXAMPLE_TESTS = DEPLOY / "policy.oncall.example.tests.yaml"
SHIPPED = {
    "policy.example.yaml": "policy.example.tests.yaml",
    "policy.oncall.example.yaml": "policy.oncall.example.tests.yaml",
}

runner = CliRunner(env={"GATEHOUSE_POLICY": None})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tests.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("example", "expectations"), SHIPPED.items())
def test_the_shipped_expectations_hold(example: str, expectations: str) -> None:
    cases = load_cases(DEPLOY / expectations)
    policy = load_policy(DEPLOY / example)

    assert check_cases(policy, cases) == []
    assert run_cases(policy, cases) == []
    asked = {key for case in cases for key in case.expectations()}
    assert asked >= {"can_request", "can_approve", "approvals_required"}
    assert ("auto_approved" in asked) == bool(policy.dynamic_groups)


def test_the_on_call_example_is_the_plain_one_plus_on_call_groups() -> None:
    plain, oncall = (load_policy(DEPLOY / name) for name in SHIPPED)

    assert not plain.dynamic_groups
    assert {g.source.value for g in oncall.dynamic_groups.values()} == {
        "pagerduty_schedule",
        "slack_usergroup",
    }
    assert dict(plain.groups) == dict(oncall.groups)
    assert plain.resources.keys() == oncall.resources.keys()


def test_the_cli_passes_the_shipped_expectations() -> None:
    result = runner.invoke(app, ["policy", "test", str(EXAMPLE_TESTS), "--policy", str(EXAMPLE)])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("✓ 18 expectations in 18 cases hold for ")


def test_every_failing_expectation_is_listed_with_its_reason(tmp_path: Path) -> None:
    tests = write(
        tmp_path,
        "- {user: U0SEC1, resource: inference-logs-ro, can_request: true}\n"
        "- {user: U0ONCALL1, resource: inference-logs-ro, auto_approved: true,"
        " can_request: true}\n"
        "- {resource: feature-store-rw, approvals_required: 3}\n"
        "- {name: commander on own request, user: U0ONCALL2, commander: U0ONCALL2,"
        " requester: U0ONCALL2, resource: serving-cluster-exec, can_approve: true}\n",
    )

    result = runner.invoke(app, ["policy", "test", str(tests), "--policy", str(EXAMPLE)])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "✗ case 1 (U0SEC1 · inference-logs-ro): can_request: expected true, got false "
        "(not a member of ml-oncall)",
        "✗ case 2 (U0ONCALL1 · inference-logs-ro): auto_approved: expected true, got false "
        "(not on call in ml-primary (PagerDuty schedule P7ML0NC))",
        "✗ case 3 (feature-store-rw): approvals_required: expected 3, got 2 "
        "(feature-store-rw requires 2)",
        "✗ case 4 (commander on own request): can_approve: expected true, got false "
        "(nobody approves their own request)",
        f"✗ 4 of 5 expectations in {tests} failed against {EXAMPLE}",
    ]
    assert result.stdout == ""


def test_a_policy_change_that_breaks_an_expectation_fails_the_run(tmp_path: Path) -> None:
    changed = tmp_path / "policy.yaml"
    changed.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(
            "    auto_approve: {oncall: ml-primary}", "    # auto-approval removed"
        ),
        encoding="utf-8",
    )

    result = runner.invoke(app, ["policy", "test", str(EXAMPLE_TESTS), "--policy", str(changed)])

    assert result.exit_code == 1
    assert (
        "✗ case 15 (U0ONCALL1 · inference-logs-ro): auto_approved: expected true, got false "
        "(inference-logs-ro has no on-call auto-approval)" in result.stderr
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{user: U0SEC1}\n", "must be a YAML list of cases"),
        ("- {resource: x, colour: red, can_request: true, user: U0A}\n", "1.colour: unknown key"),
        ("- {user: U0A, can_request: true}\n", "1.resource: missing"),
        ("- {user: U0A, resource: inference-logs-ro}\n", "1: states no expectation"),
        ("- {resource: inference-logs-ro, can_approve: true}\n", "add `user: U...`"),
        ("- {user: alice, resource: x, can_request: true}\n", "1.user:"),
        ("- {user: U0A, resource: x, can_request: 'yes'}\n", "1.can_request:"),
        (
            "- {user: U0A, resource: x, can_request: true, can_request: false}\n",
            "duplicate key 'can_request'",
        ),
    ],
)
def test_a_broken_tests_file_is_reported(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_cases(write(tmp_path, text))

    assert problem in str(info.value)


def test_cases_naming_what_the_policy_lacks_are_reported(tmp_path: Path) -> None:
    tests = write(
        tmp_path,
        "- {user: U0A, resource: inference-logs-rw, can_request: true}\n"
        "- {user: U0A, resource: inference-logs-ro, member_of: [ml-leads], can_request: true}\n",
    )

    result = runner.invoke(app, ["policy", "test", str(tests), "--policy", str(EXAMPLE)])

    assert result.exit_code == 1
    assert "1.resource: unknown resource 'inference-logs-rw'" in result.stderr
    assert "2.member_of: 'ml-leads' is not a Slack user group or PagerDuty group" in result.stderr


def test_an_invalid_policy_fails_before_any_case(tmp_path: Path) -> None:
    broken = tmp_path / "policy.yaml"
    broken.write_text("version: 2\n", encoding="utf-8")

    result = runner.invoke(app, ["policy", "test", str(EXAMPLE_TESTS), "--policy", str(broken)])

    assert result.exit_code == 1
    assert "version: unsupported version" in result.stderr


def test_a_tests_file_that_is_not_utf8_or_missing_is_reported(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("- {user: U0A, resource: caf\xe9, can_request: true}\n".encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_cases(latin1)
    with pytest.raises(PolicyError, match="file not found"):
        load_cases(tmp_path / "missing.yaml")
