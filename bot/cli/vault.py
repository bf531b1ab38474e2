"""`gatehouse vault ...`: bring Vault and our records into agreement."""

import typer

from bot import bootstrap
from bot.cli.common import database_errors, settings_or_exit
from bot.policy import PolicyError
from bot.services.sweeps import reconcile_vault

vault_app = typer.Typer(help="Work with the Vault side of Gatehouse.", no_args_is_help=True)


@vault_app.command("reconcile")
def reconcile() -> None:
    """Revoke what Vault holds for Gatehouse that no live grant or open incident owns."""
    settings = settings_or_exit()
    with database_errors(settings.database_url):
        try:
            gatehouse = bootstrap.build(settings)
        except (bootstrap.NotReady, PolicyError) as error:
            typer.echo(f"✗ {error}", err=True)
            raise typer.Exit(2) from None
        report = reconcile_vault(
            uow=gatehouse.uow,
            policy=gatehouse.policy,
            inventory=gatehouse.broker,
            clock=bootstrap.utc_now,
        )
        gatehouse.engine.dispose()
    typer.echo(
        f"Interrupted issues failed (to be retried): {len(report.interrupted_grants)}\n"
        f"Orphan tokens revoked: {len(report.revoked_tokens)}\n"
        f"Orphan leases revoked: {len(report.revoked_leases)}"
    )
    for problem in report.errors:
        typer.echo(f"✗ {problem}", err=True)
    if report.errors:
        raise typer.Exit(1)
