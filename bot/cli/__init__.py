"""The `gatehouse` command line. Each command group lives in its own module."""

import typer

from bot.cli.policy import policy_app

app = typer.Typer(
    name="gatehouse",
    help="Incident-scoped, just-in-time access to production systems, from Slack.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(policy_app, name="policy")


def main() -> None:
    app()
