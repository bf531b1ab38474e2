"""`gatehouse run`: check everything that can be checked, then serve Slack until stopped.

Exit status: 2 when the settings, the policy or the audit key are wrong (every problem is
listed, one line each, before any file is created or connection opened); 1 when the database,
Vault or Slack refuse or do not answer at start (one line: the cause and the fix) or on an
unexpected error (logged with its traceback); 0 after a clean stop (SIGTERM or SIGINT).
"""

import logging
from typing import Annotated

import typer

from bot import bootstrap
from bot.config import remove_secrets_from_environment
from bot.log_setup import configure_logging

log = logging.getLogger("gatehouse.run")


def run(
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate",
            help="Upgrade the database to the latest revision once the settings, Slack and "
            "Vault are checked (`make run` does). Without it, a database behind the migrations "
            "stops the start.",
        ),
    ] = False,
) -> None:
    """Start the bot (Socket Mode by default, GATEHOUSE_MODE=http for HTTP).

    First every problem with the settings, the policy and the audit key, one line each (exit
    2, nothing created); then Slack, Vault and the database (the first that fails: one line,
    exit 1). SIGTERM or Ctrl-C stops it (exit 0).
    """
    settings, problems = bootstrap.preflight()
    if problems:
        for problem in problems:
            typer.echo(f"✗ {problem}", err=True)
        raise typer.Exit(2)
    remove_secrets_from_environment()
    configure_logging(level=settings.log_level)
    try:
        bootstrap.start(bootstrap.prepare(settings, upgrade_database=migrate))
    except bootstrap.StartFailure as failure:
        typer.echo(f"✗ {failure}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception:
        log.exception("gatehouse run stopped on an unexpected error")
        raise typer.Exit(1) from None
