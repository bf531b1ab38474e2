"""Settings from the environment and `.env`, with errors that name the variable at fault."""

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInput

# Their values are never echoed back in an error message (a database URL carries a password).
_SECRET_VARIABLES = frozenset(
    {
        "DATABASE_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "VAULT_TOKEN",
        "GATEHOUSE_VAULT_SECRET_ID",
        "GATEHOUSE_AUDIT_SIGNING_KEY",
        "GATEHOUSE_PAGERDUTY_TOKEN",
        "GATEHOUSE_AUDIT_WEBHOOK_SECRET",
        "GATEHOUSE_SPLUNK_HEC_TOKEN",
    }
)
WEBHOOK_SIGNING = (
    "Each POST carries X-Gatehouse-Timestamp (Unix seconds) and X-Gatehouse-Signature: "
    "sha256=<hex HMAC-SHA256 keyed with this secret of '<timestamp>.<raw body>'>. Receivers "
    "recompute it over the exact body bytes, compare in constant time, and reject timestamps "
    "more than 5 minutes off (replays)."
)


class SettingsError(Exception):
    """One line per bad variable: `NAME: what is wrong`."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias="SLACK_BOT_TOKEN",
        description="Bot User OAuth Token (OAuth & Permissions), `xoxb-…`.",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias="SLACK_APP_TOKEN",
        description="App-level token with `connections:write` (Basic Information → App-Level "
        "Tokens), `xapp-…`. Socket Mode only.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias="SLACK_SIGNING_SECRET",
        description="Signing Secret (Basic Information) that authenticates Slack's requests. "
        "HTTP mode only.",
    )
    slack_team_id: str | None = Field(
        default=None,
        validation_alias="SLACK_TEAM_ID",
        description="The workspace id (`T…`) the bot serves; payloads naming another are "
        "refused. Unset: the one `auth.test` names at start.",
    )
    slack_app_id: str | None = Field(
        default=None,
        validation_alias="SLACK_APP_ID",
        description="The app id (`A…`, Basic Information → App Credentials); payloads for "
        "another app are refused. Unset: the one `auth.test` names at start, if it does.",
    )
    vault_addr: str | None = Field(
        default=None,
        validation_alias="VAULT_ADDR",
        description="The Vault server, `https://vault.example.internal:8200`.",
    )
    vault_token: SecretStr | None = Field(
        default=None,
        validation_alias="VAULT_TOKEN",
        description="The bot's own Vault token, for `GATEHOUSE_VAULT_AUTH=token`.",
    )
    vault_namespace: str | None = Field(
        default=None,
        validation_alias="VAULT_NAMESPACE",
        description="Vault Enterprise namespace to work in.",
    )
    vault_cacert: Path | None = Field(
        default=None,
        validation_alias="VAULT_CACERT",
        description="CA bundle (PEM) that signed Vault's TLS certificate, for a private CA.",
    )
    vault_auth: Literal["token", "approle", "kubernetes"] = Field(
        default="token",
        validation_alias="GATEHOUSE_VAULT_AUTH",
        description="How the bot logs in to Vault.",
    )
    vault_role_id: str | None = Field(
        default=None,
        validation_alias="GATEHOUSE_VAULT_ROLE_ID",
        description="AppRole role id (`deploy/vault/setup.sh` prints it).",
    )
    vault_secret_id: SecretStr | None = Field(
        default=None,
        validation_alias="GATEHOUSE_VAULT_SECRET_ID",
        description="AppRole secret id (`deploy/vault/setup.sh` prints it).",
    )
    vault_kubernetes_role: str | None = Field(
        default=None,
        validation_alias="GATEHOUSE_VAULT_KUBERNETES_ROLE",
        description="Vault role of the Kubernetes auth method the pod logs in with.",
    )
    vault_kubernetes_token_path: Path = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        validation_alias="GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH",
        description="The service account token presented to Vault's Kubernetes auth method.",
    )
    vault_token_role: str = Field(
        default="gatehouse-incident",
        validation_alias="GATEHOUSE_VAULT_TOKEN_ROLE",
        description="Token role every incident token is created through.",
    )
    vault_incident_policy: str = Field(
        default="gatehouse-incident-token",
        validation_alias="GATEHOUSE_VAULT_INCIDENT_POLICY",
        description="Vault policy each incident token carries (it lets the token create "
        "one child token per grant).",
    )
    vault_wrap_ttl: timedelta = Field(
        default=timedelta(minutes=5),
        validation_alias="GATEHOUSE_VAULT_WRAP_TTL",
        description="Life of the single-use wrapping token a credential is delivered in.",
    )
    vault_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        validation_alias="GATEHOUSE_VAULT_TIMEOUT",
        description="Seconds each Vault call may take; failed calls are retried with backoff.",
    )
    database_url: str = Field(
        default="sqlite:///gatehouse.db",
        validation_alias="DATABASE_URL",
        description="`sqlite:///path` for one process, `postgresql://user:password@host:5432/db` "
        "for several replicas. Its password is never printed.",
        json_schema_extra={"secret": "its password"},
    )
    policy_path: Path = Field(
        default=Path("policy.yaml"),
        validation_alias="GATEHOUSE_POLICY",
        description="The access policy file (`gatehouse policy check` validates it).",
    )
    mode: Literal["socket", "http"] = Field(
        default="socket",
        validation_alias="GATEHOUSE_MODE",
        description="`socket`: one process, no public URL. `http`: several replicas behind a "
        "load balancer, serving `/slack/events`, `/healthz`, `/readyz` and `/metrics`.",
    )
    port: int = Field(
        default=3000,
        ge=1,
        le=65535,
        validation_alias="GATEHOUSE_PORT",
        description="Port HTTP mode listens on.",
    )
    # Containers listen on every interface; set 127.0.0.1 to keep HTTP mode local.
    host: str = Field(
        default="0.0.0.0",  # noqa: S104
        validation_alias="GATEHOUSE_HOST",
        description="Address HTTP mode listens on; `127.0.0.1` keeps it local.",
    )
    slack_api_url: str | None = Field(
        default=None,
        validation_alias="GATEHOUSE_SLACK_API_URL",
        description="Slack Web API base URL, for emulators and demos. Unset: Slack's own.",
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        validation_alias="GATEHOUSE_AUDIT_SIGNING_KEY",
        description="Ed25519 private key (base64) that signs audit checkpoints; make it with "
        "`gatehouse audit keygen`. Unset: no checkpoints, and `gatehouse doctor` fails.",
    )
    pagerduty_token: SecretStr | None = Field(
        default=None,
        validation_alias="GATEHOUSE_PAGERDUTY_TOKEN",
        description="PagerDuty REST API key with read access, for `pagerduty_schedule` and "
        "`pagerduty_escalation_policy` groups. Unset: those groups count as empty and nobody "
        "is auto-approved.",
    )
    pagerduty_api_url: str = Field(
        default="https://api.pagerduty.com",
        validation_alias="GATEHOUSE_PAGERDUTY_API_URL",
        description="PagerDuty REST API base URL (an emulator in tests and demos).",
    )
    pagerduty_timeout: float = Field(
        default=3.0,
        gt=0,
        le=30,
        validation_alias="GATEHOUSE_PAGERDUTY_TIMEOUT",
        description="Seconds per PagerDuty call; past it the request falls back to ordinary "
        "approval, with a note in the thread.",
    )
    audit_webhook_url: str | None = Field(
        default=None,
        validation_alias="GATEHOUSE_AUDIT_WEBHOOK_URL",
        description="Export the audit trail to this URL: JSON batches {'records': [...]}, "
        "signed with GATEHOUSE_AUDIT_WEBHOOK_SECRET. Unset: no webhook export.",
    )
    audit_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias="GATEHOUSE_AUDIT_WEBHOOK_SECRET",
        description="Shared secret of the audit webhook. " + WEBHOOK_SIGNING,
    )
    splunk_hec_url: str | None = Field(
        default=None,
        validation_alias="GATEHOUSE_SPLUNK_HEC_URL",
        description="Splunk HTTP Event Collector base URL (https://splunk.example.com:8088); "
        "events go to /services/collector/event. Unset: no Splunk export.",
    )
    splunk_hec_token: SecretStr | None = Field(
        default=None,
        validation_alias="GATEHOUSE_SPLUNK_HEC_TOKEN",
        description="HEC token, sent as 'Authorization: Splunk <token>' (indexer "
        "acknowledgement off).",
    )
    splunk_hec_index: str | None = Field(
        default=None,
        validation_alias="GATEHOUSE_SPLUNK_HEC_INDEX",
        description="Index for the events; unset: the token's default index.",
    )
    splunk_hec_source: str = Field(
        default="gatehouse",
        min_length=1,
        validation_alias="GATEHOUSE_SPLUNK_HEC_SOURCE",
        description="The `source` of every event sent to Splunk.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        validation_alias="GATEHOUSE_LOG_LEVEL",
        description="Lowest level logged. Library request and response bodies stay off even "
        "at DEBUG.",
    )
    # Seconds between sweeps (time-outs, retries, recovery); expiry has its own timers.
    sweep_interval: float = Field(
        default=15.0,
        ge=0.5,
        le=3600,
        validation_alias="GATEHOUSE_SWEEP_INTERVAL",
        description="Seconds between sweeps (time-outs, reminders, retries, recovery, and any "
        "expiry its timer missed; expiry itself runs on a timer at each grant's end).",
    )

    @field_validator("vault_addr", "slack_api_url", "pagerduty_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got '{value}')")
        return value.rstrip("/") if value else value

    @field_validator("slack_team_id", "slack_app_id")
    @classmethod
    def _slack_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        letter = "T" if info.field_name == "slack_team_id" else "A"
        if value is not None and re.fullmatch(rf"{letter}[A-Z0-9]{{1,31}}", value) is None:
            raise ValueError(
                f"must be a Slack id: {letter} then capital letters and digits (got '{value[:40]}')"
            )
        return value

    @field_validator("audit_webhook_url", "splunk_hec_url")
    @classmethod
    def _sink_url(cls, value: str | None) -> str | None:
        """Kept as given (a webhook's trailing slash may matter), never echoed: a sink URL may
        carry a credential in its query."""
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (got a value without either)")
        return value

    @field_validator("vault_wrap_ttl", mode="before")
    @classmethod
    def _wrap_ttl(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except InvalidInput as error:
                raise ValueError(error.message) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError(
                "must be a sqlite:/// or postgresql:// URL, e.g. sqlite:///gatehouse.db"
            )
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    def missing_for_vault(self) -> list[str]:
        """The variables the chosen Vault login needs that are not set."""
        needed: dict[str, object] = {"VAULT_ADDR": self.vault_addr}
        if self.vault_auth == "token":
            needed["VAULT_TOKEN"] = self.vault_token
        elif self.vault_auth == "approle":
            needed["GATEHOUSE_VAULT_ROLE_ID"] = self.vault_role_id
            needed["GATEHOUSE_VAULT_SECRET_ID"] = self.vault_secret_id
        else:
            needed["GATEHOUSE_VAULT_KUBERNETES_ROLE"] = self.vault_kubernetes_role
        return [name for name, value in needed.items() if value is None]

    def missing_for_sinks(self) -> list[str]:
        """The secrets of the configured audit sinks that are not set."""
        needed = {}
        if self.audit_webhook_url is not None:
            needed["GATEHOUSE_AUDIT_WEBHOOK_SECRET"] = self.audit_webhook_secret
        if self.splunk_hec_url is not None:
            needed["GATEHOUSE_SPLUNK_HEC_TOKEN"] = self.splunk_hec_token
        return [name for name, value in needed.items() if value is None]

    def missing_for_run(self) -> list[str]:
        """The variables `gatehouse run` needs in the chosen mode that are not set."""
        needed = {"SLACK_BOT_TOKEN": self.slack_bot_token}
        if self.mode == "socket":
            needed["SLACK_APP_TOKEN"] = self.slack_app_token
        else:
            needed["SLACK_SIGNING_SECRET"] = self.slack_signing_secret
        return [name for name, value in needed.items() if value is None]


def load_settings(env_file: Path | str | None = ".env") -> Settings:
    """Read settings; raise SettingsError naming each missing or malformed variable."""
    try:
        return Settings(_env_file=env_file)
    except ValidationError as error:
        lines = [f"{name}: {message}" for name, message in _malformed(error)]
        raise SettingsError("\n".join(lines)) from None


def remove_secrets_from_environment() -> None:
    """Once the settings are read, the secrets leave the process environment: no library
    picks one up on its own (Bolt reads SLACK_BOT_TOKEN beside the client it is given, and
    warns that it is unused; hvac reads VAULT_TOKEN for its unauthenticated clients), and no
    child process inherits them."""
    for name in _SECRET_VARIABLES:
        os.environ.pop(name, None)


@dataclass(frozen=True)
class Problem:
    """One thing that keeps the bot from starting: the variable at fault, what is wrong with
    it, and how to fix it, printed as one line."""

    variable: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.what} — {self.fix}"


def settings_problems(env_file: Path | str | None = ".env") -> tuple[Settings, list[Problem]]:
    """Settings and everything wrong with them that can be told without the network.

    A malformed variable does not hide the others: each one is reported and replaced by its
    default, so the checks that follow still run on everything else (and say nothing more
    about the variables already reported).
    """
    try:
        settings, problems, malformed = Settings(_env_file=env_file), [], set[str]()
    except ValidationError as error:
        found = _malformed(error)
        malformed = {name for name, _ in found}
        problems = [Problem(name, message, _MALFORMED_FIX) for name, message in found]
        defaults = {
            name: field.get_default(call_default_factory=True)
            for name, field in _fields_by_variable().items()
            if name in malformed
        }
        settings = Settings(_env_file=env_file, **defaults)
    checks = [
        *_placeholder_problems(settings),
        *_slack_problems(settings, mode_known="GATEHOUSE_MODE" not in malformed),
        *_vault_problems(settings),
        *_sink_problems(settings),
        *database_url_problems(settings.database_url),
    ]
    problems += [problem for problem in checks if problem.variable not in malformed]
    return settings, problems


_MALFORMED_FIX = "correct it in the environment or .env (docs/configuration.md describes it)"
_SLACK_FIXES = {
    "SLACK_BOT_TOKEN": "install the Slack app from deploy/slack-app-manifest.yaml and copy its "
    "Bot User OAuth Token (OAuth & Permissions, xoxb-…)",
    "SLACK_APP_TOKEN": "in the Slack app, Basic Information → App-Level Tokens: generate one "
    "with connections:write (xapp-…); or serve HTTP with GATEHOUSE_MODE=http",
    "SLACK_SIGNING_SECRET": "copy the Slack app's Signing Secret (Basic Information → App "
    "Credentials); or use Socket Mode with GATEHOUSE_MODE=socket",
}
_VAULT_FIXES = {
    "VAULT_ADDR": "set the Vault server's URL, e.g. https://vault.example.internal:8200",
    "VAULT_TOKEN": "set the bot's own Vault token, or log in with GATEHOUSE_VAULT_AUTH=approle "
    "(deploy/vault/README.md)",
    "GATEHOUSE_VAULT_ROLE_ID": "deploy/vault/setup.sh prints the AppRole role id",
    "GATEHOUSE_VAULT_SECRET_ID": "deploy/vault/setup.sh prints the AppRole secret id",
    "GATEHOUSE_VAULT_KUBERNETES_ROLE": "name the Vault role of the pod's service account "
    "(deploy/k8s/README.md)",
}
_SINK_URLS = {
    "GATEHOUSE_AUDIT_WEBHOOK_SECRET": "GATEHOUSE_AUDIT_WEBHOOK_URL",
    "GATEHOUSE_SPLUNK_HEC_TOKEN": "GATEHOUSE_SPLUNK_HEC_URL",
}
_DATABASE_URL_FIX = (
    "write it as postgresql://user:password@host:5432/dbname or sqlite:///gatehouse.db"
)


# The template's placeholders (deploy/.env.example), refused by compose's preflight too.
_PLACEHOLDER = re.compile(r"change-me|your-")


def _placeholder_problems(settings: Settings) -> list[Problem]:
    """Variables still holding a value copied from deploy/.env.example (never echoed)."""
    problems = []
    for attribute, field in Settings.model_fields.items():
        name = field.validation_alias if isinstance(field.validation_alias, str) else attribute
        value = getattr(settings, attribute)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and _PLACEHOLDER.search(text):
            problems.append(
                Problem(
                    name,
                    "still holds the placeholder from deploy/.env.example",
                    "replace it with the real value (docs/configuration.md says where it "
                    "comes from)",
                )
            )
    return problems


def _slack_problems(settings: Settings, *, mode_known: bool) -> list[Problem]:
    """The Slack tokens the mode needs; with a malformed mode, only the one both modes need."""
    missing = settings.missing_for_run() if mode_known else []
    if not mode_known and settings.slack_bot_token is None:
        missing = ["SLACK_BOT_TOKEN"]
    where = {"SLACK_APP_TOKEN": " (Socket Mode)", "SLACK_SIGNING_SECRET": " (GATEHOUSE_MODE=http)"}
    return [Problem(name, f"not set{where.get(name, '')}", _SLACK_FIXES[name]) for name in missing]


def _vault_problems(settings: Settings) -> list[Problem]:
    problems = []
    for name in settings.missing_for_vault():
        how = "" if name == "VAULT_ADDR" else f" (GATEHOUSE_VAULT_AUTH={settings.vault_auth})"
        problems.append(Problem(name, f"not set{how}", _VAULT_FIXES[name]))
    if settings.vault_cacert is not None and not settings.vault_cacert.is_file():
        problems.append(
            Problem(
                "VAULT_CACERT",
                f"no file at {settings.vault_cacert}",
                "point it at the PEM bundle of the CA that signed Vault's certificate",
            )
        )
    token_path = settings.vault_kubernetes_token_path
    if settings.vault_auth == "kubernetes" and not token_path.is_file():
        problems.append(
            Problem(
                "GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH",
                f"no file at {token_path}",
                "run in a pod with a service account token mounted, or point it at the token",
            )
        )
    return problems


def _sink_problems(settings: Settings) -> list[Problem]:
    return [
        Problem(
            name,
            f"not set, but {_SINK_URLS[name]} is",
            f"set the sink's secret, or unset {_SINK_URLS[name]}",
        )
        for name in settings.missing_for_sinks()
    ]


def database_url_problems(url: str) -> list[Problem]:
    """What is wrong with DATABASE_URL before anything connects: it must parse, name a numeric
    port, and for SQLite a file in a directory that exists. Never echoes the URL (it may
    carry a password)."""
    try:
        parsed = make_url(url)
        port = parsed.port
    except ArgumentError:
        return [Problem("DATABASE_URL", "not a database URL", _DATABASE_URL_FIX)]
    except ValueError:
        return [Problem("DATABASE_URL", "its port is not a number", _DATABASE_URL_FIX)]
    if port is not None and not 1 <= port <= 65535:
        return [Problem("DATABASE_URL", f"port {port} is out of range", _DATABASE_URL_FIX)]
    if parsed.get_backend_name() != "sqlite":
        return []
    if parsed.database in (None, "", ":memory:"):
        return [
            Problem(
                "DATABASE_URL",
                "an in-memory SQLite database loses everything when the bot stops",
                "name a file: sqlite:///gatehouse.db",
            )
        ]
    directory = Path(parsed.database).parent
    if not directory.is_dir():
        return [
            Problem(
                "DATABASE_URL",
                f"the directory {directory} of the SQLite file does not exist",
                "create it, or name a file in a directory that exists",
            )
        ]
    return []


def _malformed(error: ValidationError) -> list[tuple[str, str]]:
    """(variable, what is wrong) for each invalid value, secret values never echoed."""
    found = []
    for problem in error.errors():
        name = _env_name(str(problem["loc"][0])) if problem["loc"] else "settings"
        message = str(problem["msg"]).removeprefix("Value error, ")
        if name not in _SECRET_VARIABLES and "(got" not in message:
            message += f" (got {problem.get('input')!r})"
        found.append((name, message))
    return found


def _fields_by_variable() -> dict[str, FieldInfo]:
    return {
        field.validation_alias: field
        for field in Settings.model_fields.values()
        if isinstance(field.validation_alias, str)
    }


def _env_name(field_or_alias: str) -> str:
    field = Settings.model_fields.get(field_or_alias)
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    return field_or_alias.upper()
