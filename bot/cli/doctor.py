"""`gatehouse doctor`: is everything in place? One line per check, with the fix.

Each problem is reported once, by the check it belongs to, with a fix that matches its cause: a
server that cannot be reached is a network problem, a refused login a credentials problem. A
check that needs something another check found missing says it was not checked ("–") instead
of passing. Doctor runs once and exits: it never promises to try again.
"""

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

import requests
import typer
from rich.text import Text
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from bot import bootstrap
from bot.cli.common import one_shot, sqlite_file_missing
from bot.cli.output import show_table
from bot.config import Settings, SettingsError, load_settings
from bot.domain.durations import format_duration
from bot.domain.errors import (
    CredentialDenied,
    CredentialError,
    CredentialUnavailable,
    OnCallUnavailable,
    SinkError,
    SinkMisconfigured,
)
from bot.domain.rules import AccessPolicy
from bot.policy import PolicyError, load_policy
from bot.store import migrate
from integrations.audit_signing import Ed25519Signer
from integrations.slack_web import make_web_client
from integrations.vault import VaultSession
from integrations.vault.broker import INCIDENT_TOKEN_MARGIN

# The bot scopes of deploy/slack-app-manifest.yaml (a test keeps them equal). Kept here because
# an installed package, the image's included, ships without deploy/.
BOT_SCOPES = frozenset(
    {
        "commands",
        "chat:write",
        "channels:manage",
        "channels:history",
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
# A root token's capabilities on any path are ["root"]: it may do everything.
ROOT_CAPABILITY = "root"
# Slack's answers to auth.test that mean the token itself is refused.
SLACK_REFUSED_TOKEN = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "not_allowed_token_type",
    }
)
SLACK_DEFAULT_API = "https://slack.com/api/"
PAGERDUTY_DEFAULT_API = "https://api.pagerduty.com"

NETWORK = "network: "
VAULT_FAILING = "Vault itself is failing: see its logs, then run doctor again"
CREDENTIALS = "credentials: "


class Outcome(Enum):
    PASSED = "✓"
    FAILED = "✗"
    SKIPPED = "–"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False  # not checked: something it needs is missing; never a pass

    @property
    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome.SKIPPED
        return Outcome.PASSED if self.ok else Outcome.FAILED

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def not_checked(name: str, because: str) -> Check:
    return Check(name, False, f"not checked: {because}", skipped=True)


def run_checks(settings: Settings) -> list[Check]:
    policy_check, policy = _policy(settings)
    vault_check, session = _vault(settings)
    return [
        _settings(settings),
        policy_check,
        _database(settings),
        _slack(settings),
        _mode(settings),
        vault_check,
        _vault_resources(settings, policy, session),
        _signing_key(settings),
        _pagerduty(settings, policy),
        *_audit_sinks(settings),
    ]


# -- settings and policy ------------------------------------------------------------------------


def _settings(settings: Settings) -> Check:
    """The one place a missing variable is reported; the checks that need it say so."""
    missing = _missing(settings)
    if missing:
        return failed(
            "settings",
            f"not set: {', '.join(missing)}",
            "set them in the environment or .env (deploy/.env.example says where each comes from)",
        )
    return passed("settings", "everything the chosen modes need is set")


def _missing(settings: Settings) -> list[str]:
    return settings.missing_for_run() + settings.missing_for_vault() + settings.missing_for_sinks()


def _policy(settings: Settings) -> tuple[Check, AccessPolicy | None]:
    path = settings.policy_path
    if not path.exists():
        return (
            failed(
                "policy",
                f"no policy file at {path}",
                f"start from an example (cp deploy/policy.example.yaml {path}) "
                "or point GATEHOUSE_POLICY at your policy",
            ),
            None,
        )
    try:
        policy = load_policy(path)
    except PolicyError as error:
        first, *rest = [str(problem) for problem in error.problems] or [str(error)]
        more = f" (and {len(rest)} more)" if rest else ""
        return (
            failed(
                "policy",
                f"{path}: {first}{more}",
                f"`gatehouse policy check {path}` lists every problem",
            ),
            None,
        )
    return passed("policy", f"{path}: {len(policy.resources)} resources"), policy


# -- database -------------------------------------------------------------------------------


def _database(settings: Settings) -> Check:
    url = settings.database_url
    missing = sqlite_file_missing(url)
    if missing is not None:
        return failed(
            "database",
            f"no database at {missing.absolute()}",
            "run `gatehouse db upgrade`",
        )
    try:
        current = migrate.current_revision(url)
    except (SQLAlchemyError, ValueError) as error:
        reason = _database_reason(error)
        return failed(
            "database", f"cannot connect to {_shown_url(url)}: {reason}", _database_fix(url, reason)
        )
    head = migrate.head_revision()
    if current != head:
        return failed(
            "database",
            f"at {current or 'no revision'}, not {head}",
            "run `gatehouse db upgrade`",
        )
    return passed("database", f"reachable, at the latest revision {head}")


def _shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "DATABASE_URL"


def _database_reason(error: Exception) -> str:
    """The driver's own first line (psycopg, sqlite3), without the SQLAlchemy wrapping."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return re.sub(r"\s+", " ", lines[0]) if lines else type(cause).__name__


def _database_fix(url: str, reason: str) -> str:
    said = reason.lower()
    if _shown_url(url).startswith("sqlite"):
        return "check the file's path in DATABASE_URL and that this user may read and write it"
    if any(
        words in said
        for words in ("password authentication failed", "no pg_hba.conf entry", 'role "')
    ):
        return CREDENTIALS + "check the user and password in DATABASE_URL"
    if 'database "' in said and "does not exist" in said:
        return "create the database, or correct its name in DATABASE_URL"
    if "fatal:" in said:  # the server answered, and refused for the reason shown
        return "the server refused the connection for the reason shown; check DATABASE_URL"
    if "unsupported database url" in said or "could not parse" in said:
        return "correct DATABASE_URL: sqlite:///file.db or postgresql://user@host:5432/db"
    return NETWORK + (
        "check the host and port in DATABASE_URL, that PostgreSQL is up, and that this host "
        "may reach it"
    )


# -- Slack ----------------------------------------------------------------------------------


def _slack(settings: Settings) -> Check:
    if settings.slack_bot_token is None:
        return not_checked("slack", "SLACK_BOT_TOKEN is not set (see settings)")
    client = make_web_client(
        settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    try:
        response = client.auth_test()
    except SlackApiError as error:
        code = str(error.response.get("error") or "no reason given")
        if code in SLACK_REFUSED_TOKEN:
            return failed(
                "slack",
                f"Slack refused SLACK_BOT_TOKEN: {code}",
                CREDENTIALS + "reinstall the app and copy its Bot User OAuth Token (xoxb-…) "
                "into SLACK_BOT_TOKEN",
            )
        return failed(
            "slack",
            f"auth.test failed: {code}",
            "Slack answered with an error; see status.slack.com and run doctor again",
        )
    except (SlackRequestError, OSError) as error:
        where = settings.slack_api_url or SLACK_DEFAULT_API
        return failed(
            "slack",
            f"cannot reach Slack at {where}: {_network_reason(error)}",
            NETWORK
            + "check outbound HTTPS to slack.com (proxy, firewall, DNS)"
            + (" and GATEHOUSE_SLACK_API_URL" if settings.slack_api_url else ""),
        )
    granted = {s.strip() for s in str(response.headers.get("x-oauth-scopes", "")).split(",") if s}
    missing = sorted(BOT_SCOPES - granted)
    if missing:
        return failed(
            "slack",
            f"token lacks scopes: {', '.join(missing)}",
            "update the app from deploy/slack-app-manifest.yaml and reinstall it",
        )
    return passed(
        "slack", f"token valid for team {response.get('team')}, scopes cover the manifest"
    )


def _mode(settings: Settings) -> Check:
    if settings.mode == "socket":
        if settings.slack_app_token is None:
            return not_checked("mode", "Socket Mode needs SLACK_APP_TOKEN (see settings)")
        return passed("mode", "Socket Mode: app-level token set")
    if settings.slack_signing_secret is None:
        return not_checked("mode", "HTTP mode needs SLACK_SIGNING_SECRET (see settings)")
    return passed("mode", "HTTP mode: signing secret set")


# -- Vault ----------------------------------------------------------------------------------


def _vault(settings: Settings) -> tuple[Check, VaultSession | None]:
    """Reachable and unsealed, the bot logs in, and its token may do what the bot does."""
    missing = settings.missing_for_vault()
    if missing:
        return not_checked("vault", f"{', '.join(missing)} not set (see settings)"), None
    session = VaultSession(bootstrap.vault_config(settings))
    unhealthy = _vault_health(session) or _service_account_token(settings)
    if unhealthy is not None:
        return unhealthy, None
    try:
        client = session.client  # logs in
    except CredentialUnavailable as error:
        return (
            failed(
                "vault",
                f"Vault answers but the login failed: {one_shot(error.message)}",
                VAULT_FAILING,
            ),
            None,
        )
    except CredentialError as error:
        return failed("vault", _refused_login(settings, error), _login_fix(settings)), None
    needed = dict(BOT_CAPABILITIES)
    needed[f"auth/token/create/{settings.vault_token_role}"] = {"update"}
    short, problem = _short_capabilities("vault", session, client, needed)
    if problem is not None:
        return problem, None
    if short:
        return (
            failed(
                "vault",
                "missing capabilities: " + "; ".join(short),
                "write deploy/vault/policies/gatehouse.hcl to the bot's policy (setup.sh)",
            ),
            None,
        )
    return passed("vault", f"reachable, logged in, {len(needed)} paths allowed"), session


def _vault_health(session: VaultSession) -> Check | None:
    """Ask Vault's unauthenticated health endpoint first: the network or a sealed Vault is
    named as such, never mistaken for a refused login."""
    address = session.config.address
    try:
        answer = session.new_client(token=None).sys.read_health_status(
            standby_ok=True, method="GET"
        )
    except requests.exceptions.SSLError as error:
        return failed(
            "vault",
            f"cannot reach Vault at {address}: {_network_reason(error)}",
            "set VAULT_CACERT to the CA that signed Vault's certificate",
        )
    except requests.exceptions.RequestException as error:
        return failed(
            "vault",
            f"cannot reach Vault at {address}: {_network_reason(error)}",
            NETWORK + "check VAULT_ADDR, that Vault is up, and that this host may reach it",
        )
    if isinstance(answer, dict):
        return None
    body = _json_or_empty(answer)
    errors = [str(e) for e in body.get("errors") or []]
    if body.get("sealed") is True or any("sealed" in e.lower() for e in errors):
        return failed(
            "vault",
            f"Vault at {address} is sealed",
            "unseal it (vault operator unseal); the bot's login is not the problem",
        )
    if body.get("initialized") is False:
        return failed(
            "vault",
            f"Vault at {address} is not initialized",
            "initialize and unseal it (vault operator init), then run deploy/vault/setup.sh",
        )
    if answer.status_code in (429, 472, 473):  # a standby: it forwards requests
        return None
    said = f": {', '.join(errors)}" if errors else ""
    return failed(
        "vault",
        f"Vault at {address} answered {answer.status_code}{said}",
        VAULT_FAILING,
    )


def _service_account_token(settings: Settings) -> Check | None:
    """The Kubernetes login presents this file: unreadable, there is nothing to log in with."""
    if settings.vault_auth != "kubernetes":
        return None
    path = settings.vault_kubernetes_token_path
    try:
        path.read_bytes()
    except OSError as error:
        return failed(
            "vault",
            f"cannot read the service account token at {path}: {error.strerror or error}",
            "run where Kubernetes mounts it, or set GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH",
        )
    return None


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refused_login(settings: Settings, error: CredentialError) -> str:
    if isinstance(error, CredentialDenied):
        return f"Vault refused the bot's {settings.vault_auth} login: permission denied"
    return error.message


def _login_fix(settings: Settings) -> str:
    if settings.vault_auth == "token":
        return (
            CREDENTIALS + "set VAULT_TOKEN to a valid token of the bot (not expired, not revoked)"
        )
    if settings.vault_auth == "approle":
        return CREDENTIALS + (
            "check GATEHOUSE_VAULT_ROLE_ID and GATEHOUSE_VAULT_SECRET_ID "
            "(deploy/vault/setup.sh writes or prints them)"
        )
    return CREDENTIALS + (
        "check GATEHOUSE_VAULT_KUBERNETES_ROLE and Vault's role binding to this service "
        "account (deploy/k8s/README.md)"
    )


def _short_capabilities(
    name: str, session: VaultSession, client: Any, needed: dict[str, set[str]]
) -> tuple[list[str], Check | None]:
    """`path (capabilities)` for each path the bot's token may not use as needed."""

    def ask() -> dict[str, Any]:
        response: dict[str, Any] = client.sys.get_capabilities(paths=list(needed), token=None)
        return response

    try:
        granted: dict[str, list[str]] = session.call(
            "check the bot's capabilities", ask, path="sys/capabilities-self", as_bot=True
        )["data"]
    except CredentialDenied:
        return [], failed(
            name,
            "the bot's token may not read its own capabilities (sys/capabilities-self)",
            "write deploy/vault/policies/gatehouse.hcl to the bot's policy (setup.sh)",
        )
    except CredentialError as error:
        return [], failed(name, one_shot(error.message), VAULT_FAILING)
    short = [
        f"{path} ({', '.join(sorted(wanted - set(granted.get(path, []))))})"
        for path, wanted in needed.items()
        if not allows(granted.get(path, []), wanted)
    ]
    return short, None


def allows(granted: list[str], wanted: set[str]) -> bool:
    """Vault answers ["root"] for a root token: every capability, sudo included."""
    return ROOT_CAPABILITY in granted or wanted <= set(granted)


def _vault_resources(
    settings: Settings, policy: AccessPolicy | None, session: VaultSession | None
) -> Check:
    """What the policy's resources need of Vault: the bot may find their leases, and incident
    tokens outlive the longest access (a grant token dies with its incident token)."""
    name = "vault resources"
    if policy is None:
        return not_checked(name, "the policy did not load")
    if session is None:
        return not_checked(name, "the vault check did not pass")
    client = session.client
    role_path = f"auth/token/roles/{settings.vault_token_role}"
    needed = {
        f"sys/leases/lookup/{rule.vault.path}/": {"list", "sudo"}
        for rule in policy.resources.values()
        if rule.vault.path
    }
    needed[role_path] = {"read"}
    short, problem = _short_capabilities(name, session, client, needed)
    if problem is not None:
        return problem
    if short:
        return failed(
            name,
            "missing capabilities: " + "; ".join(short),
            "write deploy/vault/policies/gatehouse.hcl to the bot's policy (setup.sh)",
        )

    def read_role() -> dict[str, Any] | None:
        answer: dict[str, Any] | None = client.read(role_path)
        return answer

    try:
        role = session.call(
            f"read {role_path}", read_role, path=role_path, capability="read", as_bot=True
        )
    except CredentialError as error:
        return failed(name, one_shot(error.message), VAULT_FAILING)
    if role is None:
        return failed(
            name,
            f"the token role {settings.vault_token_role} does not exist",
            "run deploy/vault/setup.sh (it creates the role), or correct "
            "GATEHOUSE_VAULT_TOKEN_ROLE",
        )
    return _incident_token_lifetime(name, settings, policy, role)


def _incident_token_lifetime(
    name: str, settings: Settings, policy: AccessPolicy, role: dict[str, Any]
) -> Check:
    data = role.get("data") or {}
    limit_seconds = int(data.get("token_explicit_max_ttl") or data.get("explicit_max_ttl") or 0)
    longest = max(policy.resources.values(), key=lambda rule: rule.max_ttl)
    needed = longest.max_ttl + INCIDENT_TOKEN_MARGIN
    paths = sum(1 for rule in policy.resources.values() if rule.vault.path)
    if not limit_seconds:
        return passed(
            name,
            f"the bot may look up the leases of {paths} resources; the token role "
            f"{settings.vault_token_role} sets no explicit max TTL",
        )
    limit = timedelta(seconds=limit_seconds)
    if needed > limit:
        return failed(
            name,
            f"incident tokens live at most {format_duration(limit)} (token role "
            f"{settings.vault_token_role}), but {longest.name} may be granted for "
            f"{format_duration(longest.max_ttl)}: its access would end with the incident token",
            f"lower max_ttl to at most {format_duration(limit - INCIDENT_TOKEN_MARGIN)}, or run "
            "deploy/vault/setup.sh again with GATEHOUSE_INCIDENT_TOKEN_MAX_TTL="
            f"{_vault_duration(needed)} or more",
        )
    return passed(
        name,
        f"the bot may look up the leases of {paths} resources; incident tokens live up to "
        f"{format_duration(limit)}, the longest access is {format_duration(longest.max_ttl)}",
    )


def _vault_duration(value: timedelta) -> str:
    """A duration as Vault reads it from setup.sh: hours, minutes and seconds (`48h10m`); Vault
    takes whole days (`2d`) but not days with a remainder (`2d10m`)."""
    hours, rest = divmod(int(value.total_seconds()), 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{seconds}s" if seconds else "",
    ]
    return "".join(parts) or "0s"


# -- audit key, PagerDuty, sinks ------------------------------------------------------------


def _signing_key(settings: Settings) -> Check:
    if settings.audit_signing_key is None:
        return failed(
            "audit key",
            "GATEHOUSE_AUDIT_SIGNING_KEY is not set",
            "run `gatehouse audit keygen` and set the key it prints",
        )
    try:
        signer = Ed25519Signer(settings.audit_signing_key.get_secret_value())
    except ValueError as error:
        return failed("audit key", str(error), "run `gatehouse audit keygen` for a new key")
    return passed("audit key", f"checkpoints are signed with key {signer.key_id}")


def _pagerduty(settings: Settings, policy: AccessPolicy | None) -> Check:
    if policy is None:
        return not_checked("pagerduty", "the policy did not load")
    groups = sorted(name for name, group in policy.dynamic_groups.items() if group.is_pagerduty)
    if not groups:
        return passed("pagerduty", "the policy has no PagerDuty groups")
    if settings.pagerduty_token is None:
        return failed(
            "pagerduty",
            f"GATEHOUSE_PAGERDUTY_TOKEN is not set: empty on-call groups {', '.join(groups)}",
            "set GATEHOUSE_PAGERDUTY_TOKEN to a PagerDuty REST API key with read access",
        )
    _, oncall = bootstrap.build_lookups(settings)
    if oncall is None:
        return not_checked(
            "pagerduty", "people are matched by Slack e-mail, and SLACK_BOT_TOKEN is not set"
        )
    try:
        oncall.check()
    except OnCallUnavailable as error:
        return failed("pagerduty", error.message, _pagerduty_fix(settings, error.message))
    finally:
        oncall.close()
    return passed("pagerduty", f"API key accepted; on-call groups: {', '.join(groups)}")


def _pagerduty_fix(settings: Settings, message: str) -> str:
    if re.search(r"\((401|403)\)", message):
        return CREDENTIALS + (
            "set GATEHOUSE_PAGERDUTY_TOKEN to a REST API key with read access to users and on-calls"
        )
    if "could not be reached" in message or "did not answer" in message:
        where = settings.pagerduty_api_url or PAGERDUTY_DEFAULT_API
        return NETWORK + f"check that this host may reach {where} (proxy, firewall, DNS)"
    return "PagerDuty answered with an error; see status.pagerduty.com and run doctor again"


def _audit_sinks(settings: Settings) -> list[Check]:
    """One check per configured audit sink: it answers, and accepts our credentials."""
    missing = settings.missing_for_sinks()
    if missing:
        return [not_checked("audit sinks", f"{', '.join(missing)} not set (see settings)")]
    checks = []
    for sink in bootstrap.build_sinks(settings):
        name = f"audit sink {sink.name}"
        try:
            checks.append(passed(name, sink.check()))
        except SinkError as error:
            fix = (
                "correct the settings named above; records wait in the database meanwhile"
                if isinstance(error, SinkMisconfigured)
                else NETWORK + "check the sink's URL and that it is up; records wait in the "
                "database"
            )
            checks.append(failed(name, error.message, fix))
        finally:
            sink.close()
    return checks


# -- wording --------------------------------------------------------------------------------

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_CERTIFICATE = re.compile(r"certificate verify failed: ([^'\")(]+)")


def _network_reason(error: BaseException) -> str:
    """The operating system's words for a failed connection: `Connection refused`."""
    text = str(error)
    if isinstance(error, requests.exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
        found = _CERTIFICATE.search(text)
        return "TLS: certificate verify failed" + (f": {found.group(1).strip()}" if found else "")
    if isinstance(error, requests.exceptions.Timeout):
        return "timed out"
    reason = getattr(error, "reason", None)  # urllib's URLError
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    if isinstance(reason, str) and reason:
        return reason
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    found = _ERRNO.search(text)
    return found.group(1).strip() if found else type(error).__name__


# -- the command ----------------------------------------------------------------------------


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
        [(_mark(check), check.name, check.detail, check.fix) for check in checks],
        plain=lambda: "\n".join(_plain_line(check) for check in checks),
    )
    if any(check.failed for check in checks):
        raise typer.Exit(1)


_MARK_STYLES: dict[Outcome, str] = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "bold red",
    Outcome.SKIPPED: "dim",
}


def _mark(check: Check) -> Text:
    return Text(check.outcome.value, style=_MARK_STYLES[check.outcome])


def _plain_line(check: Check) -> str:
    line = f"{check.outcome.value} {check.name}: {check.detail}"
    return line + (f"\n    fix: {check.fix}" if check.failed and check.fix else "")
