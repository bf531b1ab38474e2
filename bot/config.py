"""Settings from the environment and `.env`, with errors that name the variable at fault."""

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInput

SLACK_APP_HELP = (
    "Create the Slack app from deploy/slack-app-manifest.yaml (api.slack.com/apps -> "
    "Create New App -> From an app manifest), install it to your workspace, then set "
    "SLACK_BOT_TOKEN (OAuth & Permissions, xoxb-...) and SLACK_APP_TOKEN (Basic Information -> "
    "App-Level Tokens with connections:write, xapp-...) for Socket Mode, or SLACK_SIGNING_SECRET "
    "for GATEHOUSE_MODE=http. Put them in the environment or in a .env file."
)


# Their values are never echoed back in an error message.
_SECRET_VARIABLES = frozenset(
    {
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "VAULT_TOKEN",
        "GATEHOUSE_VAULT_SECRET_ID",
        "GATEHOUSE_AUDIT_SIGNING_KEY",
    }
)


class SettingsError(Exception):
    """One line per bad variable: `NAME: what is wrong`."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    vault_addr: str | None = Field(default=None, validation_alias="VAULT_ADDR")
    vault_token: SecretStr | None = Field(default=None, validation_alias="VAULT_TOKEN")
    vault_namespace: str | None = Field(default=None, validation_alias="VAULT_NAMESPACE")
    vault_cacert: Path | None = Field(default=None, validation_alias="VAULT_CACERT")
    vault_auth: Literal["token", "approle", "kubernetes"] = Field(
        default="token", validation_alias="GATEHOUSE_VAULT_AUTH"
    )
    vault_role_id: str | None = Field(default=None, validation_alias="GATEHOUSE_VAULT_ROLE_ID")
    vault_secret_id: SecretStr | None = Field(
        default=None, validation_alias="GATEHOUSE_VAULT_SECRET_ID"
    )
    vault_kubernetes_role: str | None = Field(
        default=None, validation_alias="GATEHOUSE_VAULT_KUBERNETES_ROLE"
    )
    vault_kubernetes_token_path: Path = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        validation_alias="GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH",
    )
    vault_token_role: str = Field(
        default="gatehouse-incident", validation_alias="GATEHOUSE_VAULT_TOKEN_ROLE"
    )
    vault_incident_policy: str = Field(
        default="gatehouse-incident-token", validation_alias="GATEHOUSE_VAULT_INCIDENT_POLICY"
    )
    vault_wrap_ttl: timedelta = Field(
        default=timedelta(minutes=5), validation_alias="GATEHOUSE_VAULT_WRAP_TTL"
    )
    vault_timeout: float = Field(
        default=10.0, gt=0, le=300, validation_alias="GATEHOUSE_VAULT_TIMEOUT"
    )
    database_url: str = Field(default="sqlite:///gatehouse.db", validation_alias="DATABASE_URL")
    policy_path: Path = Field(default=Path("policy.yaml"), validation_alias="GATEHOUSE_POLICY")
    mode: Literal["socket", "http"] = Field(default="socket", validation_alias="GATEHOUSE_MODE")
    port: int = Field(default=3000, ge=1, le=65535, validation_alias="GATEHOUSE_PORT")
    # Containers listen on every interface; set 127.0.0.1 to keep HTTP mode local.
    host: str = Field(default="0.0.0.0", validation_alias="GATEHOUSE_HOST")  # noqa: S104
    slack_api_url: str | None = Field(default=None, validation_alias="GATEHOUSE_SLACK_API_URL")
    audit_signing_key: SecretStr | None = Field(
        default=None, validation_alias="GATEHOUSE_AUDIT_SIGNING_KEY"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="GATEHOUSE_LOG_LEVEL"
    )
    # Seconds between sweeps (time-outs, retries, recovery); expiry has its own timers.
    sweep_interval: float = Field(
        default=15.0, ge=0.5, le=3600, validation_alias="GATEHOUSE_SWEEP_INTERVAL"
    )

    @field_validator("vault_addr", "slack_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got '{value}')")
        return value.rstrip("/") if value else value

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
        lines = []
        for problem in error.errors():
            name = _env_name(str(problem["loc"][0])) if problem["loc"] else "settings"
            message = str(problem["msg"]).removeprefix("Value error, ")
            if name not in _SECRET_VARIABLES and "(got" not in message:
                message += f" (got {problem.get('input')!r})"
            lines.append(f"{name}: {message}")
        raise SettingsError("\n".join(lines)) from None


def _env_name(field_or_alias: str) -> str:
    field = Settings.model_fields.get(field_or_alias)
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    return field_or_alias.upper()
