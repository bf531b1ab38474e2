"""`gatehouse policy ...` commands."""

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.output import show_table
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

policy_app = typer.Typer(help="Check, explain and describe policy.yaml.", no_args_is_help=True)

_FILE_HELP = "Policy file. Defaults to $GATEHOUSE_POLICY, else policy.yaml."


def _policy_path(given: Path | None) -> Path:
    return given or Path(os.environ.get("GATEHOUSE_POLICY") or "policy.yaml")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _report(path: Path, problems: list[PolicyProblem]) -> None:
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
    file: Annotated[Path | None, typer.Argument(help=_FILE_HELP, show_default=False)] = None,
) -> None:
    """Validate a policy file and list every problem in it."""
    path = _policy_path(file)
    policy = _load_or_exit(path)
    resources = _plural(len(policy.resources), "resource")
    groups = _plural(len(policy.groups), "group")
    typer.echo(f"✓ {path} is valid: {resources}, {groups}")


@policy_app.command("explain")
def explain(
    resource: Annotated[str, typer.Argument(help="Resource name, as in /request-access.")],
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help=_FILE_HELP, show_default=False)
    ] = None,
) -> None:
    """Say who may request a resource, who approves it, and for how long."""
    policy = _load_or_exit(_policy_path(policy_file))
    try:
        heading, facts = resource_facts(policy, resource)
    except NotFound as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    show_table(
        ["", ""],
        facts,
        title=heading,
        header=False,
        plain=lambda: explain_resource(policy, resource),
    )


@policy_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of policy.yaml (for editors and yaml-language-server)."""
    typer.echo(json.dumps(policy_json_schema(), indent=2))
