"""`gatehouse doctor`: is everything in place? One line per check, with the fix."""

from dataclasses import dataclass
from typing import Any

import typer
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy.exc import SQLAlchemyError

from bot import bootstrap
from bot.cli.common import sqlite_file_missing
from bot.cli.output import mark, show_table
from bot.config import Settings, SettingsError, load_settings
from bot.domain.errors import CredentialError, OnCallUnavailable, SinkError, SinkMisconfigured
from bot.domain.rules import AccessPolicy
from bot.policy import PolicyError, load_policy
from bot.store import migrate
from integrations.audit_signing import Ed25519Signer
from integrations.slack_web import make_web_client
from integrations.vault import VaultSession

# The bot scopes of deploy/slack-app-manifest.yaml (a test keeps them equal). Kept here because
# an installed package, the image's included, ships without deploy/.
BOT_SCOPES = frozenset(
    {
        "commands",
        "chat:write",
        "channels:manage",
        "pins:write",
        "files:write",
        "im:write",
        "usergroups:read",
        "users:read",
        "users:read.email",
    }
)
# What the bot's own token must be allowed to do (deploy/vault/policies/gatehouse.hcl).
BOT_CAPABILITIES = {
    "auth/token/revoke-accessor": {"update"},
    "auth/token/lookup-accessor": {"update"},
    "auth/token/renew-accessor": {"update"},
    "auth/token/accessors/": {"list", "sudo"},
    "sys/leases/revoke": {"update"},
    "sys/leases/renew": {"update"},
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(settings: Settings) -> list[Check]:
    checks = [_settings(settings)]
    policy = None
    try:
        policy = load_policy(settings.policy_path)
        checks.append(
            Check("policy", True, f"{settings.policy_path}: {len(policy.resources)} resources")
        )
    except PolicyError as error:
        checks.append(
            Check(
                "policy",
                False,
                str(error).splitlines()[0],
                f"fix {settings.policy_path}; `gatehouse policy check` lists every problem",
            )
        )
    checks.append(_database(settings))
    checks.append(_slack(settings))
    checks.append(_mode(settings))
    checks.append(_vault(settings, policy))
    checks.append(_signing_key(settings))
    checks.append(_pagerduty(settings, policy))
    checks.extend(_audit_sinks(settings))
    return checks


def _audit_sinks(settings: Settings) -> list[Check]:
    """One check per configured audit sink: it answers, and accepts our credentials."""
    try:
        sinks = bootstrap.build_sinks(settings)
    except bootstrap.NotReady as error:
        return [Check("audit sinks", False, str(error), "set the secret, or unset the sink's URL")]
    checks = []
    for sink in sinks:
        name = f"audit sink {sink.name}"
        try:
            checks.append(Check(name, True, sink.check()))
        except SinkError as error:
            fix = (
                "correct the settings named above; records wait in the database meanwhile"
                if isinstance(error, SinkMisconfigured)
                else "check the sink's URL and that it is up; records wait in the database"
            )
            checks.append(Check(name, False, error.message, fix))
        finally:
            sink.close()
    return checks


def _pagerduty(settings: Settings, policy: AccessPolicy | None) -> Check:
    groups = sorted(
        name
        for name, group in (policy.dynamic_groups if policy else {}).items()
        if group.is_pagerduty
    )
    if not groups:
        return Check("pagerduty", True, "the policy has no PagerDuty groups")
    fix = "set GATEHOUSE_PAGERDUTY_TOKEN to a PagerDuty REST API key with read access"
    if settings.pagerduty_token is None:
        detail = f"GATEHOUSE_PAGERDUTY_TOKEN is not set: empty on-call groups {', '.join(groups)}"
        return Check("pagerduty", False, detail, fix)
    _, oncall = bootstrap.build_lookups(settings)
    if oncall is None:
        return Check(
            "pagerduty", False, "SLACK_BOT_TOKEN is not set", "people are matched by Slack e-mail"
        )
    try:
        oncall.check()
    except OnCallUnavailable as error:
        return Check("pagerduty", False, error.message, f"{fix} (GATEHOUSE_PAGERDUTY_API_URL)")
    finally:
        oncall.close()
    return Check("pagerduty", True, f"API key accepted; on-call groups: {', '.join(groups)}")


def _signing_key(settings: Settings) -> Check:
    if settings.audit_signing_key is None:
        return Check(
            "audit key",
            False,
            "GATEHOUSE_AUDIT_SIGNING_KEY is not set",
            "run `gatehouse audit keygen` and set the key it prints",
        )
    try:
        signer = Ed25519Signer(settings.audit_signing_key.get_secret_value())
    except ValueError as error:
        return Check("audit key", False, str(error), "run `gatehouse audit keygen` for a new key")
    return Check("audit key", True, f"checkpoints are signed with key {signer.key_id}")


def _settings(settings: Settings) -> Check:
    missing = (
        settings.missing_for_run() + settings.missing_for_vault() + settings.missing_for_sinks()
    )
    if missing:
        return Check(
            "settings",
            False,
            f"not set: {', '.join(missing)}",
            "set them in the environment or .env (see deploy/.env.example)",
        )
    return Check("settings", True, "everything the chosen modes need is set")


def _database(settings: Settings) -> Check:
    missing = sqlite_file_missing(settings.database_url)
    if missing is not None:
        return Check("database", False, f"no database at {missing}", "run `gatehouse db upgrade`")
    try:
        current = migrate.current_revision(settings.database_url)
    except (SQLAlchemyError, ValueError) as error:
        return Check(
            "database",
            False,
            f"cannot connect: {type(error).__name__}",
            "check DATABASE_URL and that the server is up",
        )
    head = migrate.head_revision()
    if current != head:
        return Check(
            "database",
            False,
            f"at {current or 'no revision'}, not {head}",
            "run `gatehouse db upgrade`",
        )
    return Check("database", True, f"reachable, at the latest revision {head}")


def _slack(settings: Settings) -> Check:
    if settings.slack_bot_token is None:
        return Check(
            "slack", False, "SLACK_BOT_TOKEN is not set", "install the app and copy its bot token"
        )
    client = make_web_client(
        settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    try:
        response = client.auth_test()
    except (SlackApiError, SlackRequestError, OSError) as error:
        code = error.response.get("error") if isinstance(error, SlackApiError) else "unreachable"
        return Check(
            "slack",
            False,
            f"auth.test failed: {code}",
            "reinstall the app and copy the bot token again",
        )
    granted = {s.strip() for s in str(response.headers.get("x-oauth-scopes", "")).split(",") if s}
    missing = sorted(BOT_SCOPES - granted)
    if missing:
        return Check(
            "slack",
            False,
            f"token lacks scopes: {', '.join(missing)}",
            "update the app from deploy/slack-app-manifest.yaml and reinstall it",
        )
    return Check(
        "slack", True, f"token valid for team {response.get('team')}, scopes cover the manifest"
    )


def _mode(settings: Settings) -> Check:
    if settings.mode == "socket":
        ok = settings.slack_app_token is not None
        return Check(
            "mode",
            ok,
            "Socket Mode: app-level token " + ("set" if ok else "missing"),
            "" if ok else "create an app-level token with connections:write (SLACK_APP_TOKEN)",
        )
    ok = settings.slack_signing_secret is not None
    return Check(
        "mode",
        ok,
        "HTTP mode: signing secret " + ("set" if ok else "missing"),
        "" if ok else "copy the Signing Secret into SLACK_SIGNING_SECRET",
    )


def _vault(settings: Settings, policy: AccessPolicy | None) -> Check:
    try:
        session = VaultSession(bootstrap.vault_config(settings))
        client = session.client  # logs in
    except bootstrap.NotReady as error:
        return Check("vault", False, str(error), "set the Vault variables (deploy/vault/README.md)")
    except CredentialError as error:
        return Check("vault", False, error.message, "check VAULT_ADDR and the bot's Vault login")
    needed = dict(BOT_CAPABILITIES)
    needed[f"auth/token/create/{settings.vault_token_role}"] = {"update"}
    for rule in policy.resources.values() if policy else []:
        if rule.vault.path:
            needed[f"sys/leases/lookup/{rule.vault.path}/"] = {"list", "sudo"}

    def ask() -> dict[str, Any]:
        response: dict[str, Any] = client.sys.get_capabilities(paths=list(needed), token=None)
        return response

    try:
        granted: dict[str, list[str]] = session.call(
            "check the bot's capabilities", ask, as_bot=True
        )["data"]
    except CredentialError as error:
        return Check(
            "vault", False, error.message, "allow sys/capabilities-self in the bot's policy"
        )
    short = [
        f"{path} ({', '.join(sorted(wanted - set(granted.get(path, []))))})"
        for path, wanted in needed.items()
        if not wanted <= set(granted.get(path, []))
    ]
    if short:
        return Check(
            "vault",
            False,
            "missing capabilities: " + "; ".join(short),
            "write deploy/vault/policies/gatehouse.hcl to the bot's policy (setup.sh)",
        )
    return Check("vault", True, f"reachable, logged in, {len(needed)} paths allowed")


def doctor() -> None:
    """Check settings, database, Slack, Vault and the policy; exit 1 unless all pass."""
    try:
        settings = load_settings()
    except SettingsError as error:
        typer.echo(f"✗ settings: {error}", err=True)
        raise typer.Exit(1) from None
    checks = run_checks(settings)
    show_table(
        ["", "check", "result", "fix"],
        [(mark(check.ok), check.name, check.detail, check.fix) for check in checks],
        plain=lambda: "\n".join(_plain_line(check) for check in checks),
    )
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def _plain_line(check: Check) -> str:
    line = f"{'✓' if check.ok else '✗'} {check.name}: {check.detail}"
    return line + (f"\n    fix: {check.fix}" if not check.ok and check.fix else "")
