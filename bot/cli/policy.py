"""`gatehouse policy ...` commands."""

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from bot import bootstrap
from bot.cli.common import fail, settings_or_exit
from bot.cli.output import show_table
from bot.domain.eligibility import Resolution
from bot.domain.errors import NotFound
from bot.domain.rules import AccessPolicy
from bot.policy import (
    PolicyError,
    PolicyProblem,
    explain_resource,
    load_policy,
    policy_json_schema,
    resource_facts,
)
from bot.policy.cases import check_cases, load_cases, run_cases
from bot.policy.explain import explain_for_user
from bot.services.eligibility import resolve_groups

policy_app = typer.Typer(help="Check, explain and describe policy.yaml.", no_args_is_help=True)

_FILE_HELP = "Policy file. Defaults to $GATEHOUSE_POLICY, else policy.yaml."
PolicyOption = Annotated[
    Path | None, typer.Option("--policy", metavar="FILE", help=_FILE_HELP, show_default=False)
]


def _policy_path(given: Path | None) -> Path:
    return given or Path(os.environ.get("GATEHOUSE_POLICY") or "policy.yaml")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _report(path: Path, problems: list[PolicyProblem]) -> None:
    """One problem is one line (a missing file above all); several are listed under a count."""
    if len(problems) == 1:
        (problem,) = problems
        where = "" if problem.path == str(path) else f" {problem.path}:"
        typer.echo(f"✗ {path}:{where} {problem.message}", err=True)
        return
    typer.echo(f"✗ {path} has {_plural(len(problems), 'problem')}:", err=True)
    for problem in problems:
        typer.echo(f"{problem.path}: {problem.message}", err=True)


def _load_or_exit(path: Path) -> AccessPolicy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        _report(path, exc.problems)
        raise typer.Exit(1) from None


@policy_app.command("check")
def check(
    file: Annotated[
        Path | None, typer.Argument(metavar="FILE", help=_FILE_HELP, show_default=False)
    ] = None,
    policy_file: PolicyOption = None,
) -> None:
    """Validate a policy file and list every problem in it (give it as FILE or --policy)."""
    if file is not None and policy_file is not None and file != policy_file:
        fail(f"two policy files given ({file} and --policy {policy_file}): give one", 2)
    path = _policy_path(file or policy_file)
    policy = _load_or_exit(path)
    resources = _plural(len(policy.resources), "resource")
    groups = _plural(len(policy.groups) + len(policy.dynamic_groups), "group")
    typer.echo(f"✓ {path} is valid: {resources}, {groups}")


@policy_app.command("explain")
def explain(
    resource: Annotated[
        str | None,
        typer.Argument(
            metavar="RESOURCE", help="Resource name, as in /request-access.", show_default=False
        ),
    ] = None,
    policy_file: PolicyOption = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="U…",
            help="A Slack user ID: may they request it now, who could approve, would they be "
            "auto-approved, and why. Looks up Slack user groups and PagerDuty on-call.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Say who may request a resource, who approves it, and for how long."""
    policy = _load_or_exit(_policy_path(policy_file))
    if resource is None:
        known = ", ".join(sorted(policy.resources)) or "none in the policy"
        fail(f"name the resource to explain; known resources: {known}", 2)
    try:
        heading, facts = resource_facts(policy, resource)
        resolution = _look_up_now(policy, resource, user) if user else None
    except NotFound as exc:
        fail(exc.message)
    show_table(
        ["", ""],
        facts,
        title=heading,
        header=False,
        plain=lambda: explain_resource(policy, resource),
    )
    if user and resolution is not None:
        typer.echo("")
        typer.echo(explain_for_user(policy, resource, user, resolution))


def _look_up_now(policy: AccessPolicy, resource: str, user: str) -> Resolution:
    """The resource's dynamic groups as the bot would look them up for `user` right now."""
    rule = policy.resource(resource)
    if not policy.dynamic_groups_of(rule):
        return Resolution()
    settings = settings_or_exit()
    if settings.slack_bot_token is None:
        typer.echo(
            "SLACK_BOT_TOKEN is not set: Slack user groups and PagerDuty on-call (matched by "
            "Slack e-mail) cannot be looked up here.",
            err=True,
        )
    directory, oncall = bootstrap.build_lookups(settings)
    return resolve_groups(
        policy=policy, rule=rule, requester_id=user, directory=directory, oncall=oncall
    )


@policy_app.command("test")
def run_policy_tests(
    file: Annotated[
        Path, typer.Argument(metavar="EXPECTATIONS", help="A YAML list of expectations.")
    ],
    policy_file: PolicyOption = None,
) -> None:
    """Check expectations about the policy (can_request, can_approve, approvals_required,
    auto_approved); list every one that fails, with the reason, and exit 1."""
    path = _policy_path(policy_file)
    policy = _load_or_exit(path)
    try:
        cases = load_cases(file)
    except PolicyError as exc:
        _report(file, exc.problems)
        raise typer.Exit(1) from None
    problems = check_cases(policy, cases)
    if problems:
        _report(file, problems)
        raise typer.Exit(1)
    failures = run_cases(policy, cases)
    expectations = sum(len(case.expectations()) for case in cases)
    for failure in failures:
        typer.echo(f"✗ {failure}", err=True)
    if failures:
        typer.echo(
            f"✗ {len(failures)} of {_plural(expectations, 'expectation')} in {file} failed "
            f"against {path}",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(
        f"✓ {_plural(expectations, 'expectation')} in {_plural(len(cases), 'case')} hold for {path}"
    )


@policy_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of policy.yaml (for editors and yaml-language-server)."""
    typer.echo(json.dumps(policy_json_schema(), indent=2))
