"""`gatehouse config`: the settings in effect (secrets hidden), or their reference in Markdown.

The reference (docs/configuration.md) is generated from `bot.config.Settings`: names, types,
defaults and descriptions come from the fields, and when a variable is required comes from the
same checks `gatehouse run` makes (`missing_for_run`, `missing_for_vault`).
"""

import itertools
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from bot.cli.common import settings_or_exit
from bot.cli.output import show_table
from bot.config import Settings
from bot.domain.durations import format_duration
from bot.log_setup import redact_text

REGENERATE = "gatehouse config --markdown > docs/configuration.md"
_KINDS: dict[Any, str] = {
    SecretStr: "string",
    str: "string",
    Path: "path",
    timedelta: "duration (`90s`, `45m`, `2h`, `1h30m`)",
    int: "integer",
    float: "number",
}
_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


@dataclass(frozen=True)
class Variable:
    """One environment variable of `Settings`, as people need to know it."""

    name: str
    field: str
    kind: str
    default: str
    required: str
    secret: str
    description: str


def variables() -> list[Variable]:
    """Every variable `Settings` reads, in the order the fields are declared."""
    required = _required_when()
    found = []
    for field_name, field in Settings.model_fields.items():
        name = str(field.validation_alias)
        found.append(
            Variable(
                name=name,
                field=field_name,
                kind=_kind(field),
                default=_default(field),
                required=required.get(name, "no"),
                secret=_secret(field),
                description=field.description or "",
            )
        )
    return found


def _members(field_name: str) -> tuple[str, ...]:
    return get_args(Settings.model_fields[field_name].annotation)


def _required_when() -> dict[str, str]:
    """For each variable some setup needs: `yes`, or the mode or Vault login that needs it."""
    modes, logins = _members("mode"), _members("vault_auth")
    needed_in: dict[str, set[tuple[str, str]]] = {}
    for mode, login in itertools.product(modes, logins):
        setup: dict[str, Any] = {"mode": mode, "vault_auth": login}  # nothing else set
        settings = Settings.model_construct(**setup)
        for name in settings.missing_for_run() + settings.missing_for_vault():
            needed_in.setdefault(name, set()).add((mode, login))
    described = {}
    for name, setups in needed_in.items():
        in_modes = {mode for mode, _ in setups}
        in_logins = {login for _, login in setups}
        if len(setups) == len(modes) * len(logins):
            described[name] = "yes"
        elif setups == set(itertools.product(in_modes, logins)):
            described[name] = _when("GATEHOUSE_MODE", in_modes, modes)
        elif setups == set(itertools.product(modes, in_logins)):
            described[name] = _when("GATEHOUSE_VAULT_AUTH", in_logins, logins)
        else:
            raise ValueError(f"{name} is needed in an unusual set of setups: {sorted(setups)}")
    return described


def _when(variable: str, values: set[str], order: tuple[str, ...]) -> str:
    return "when " + " or ".join(f"`{variable}={value}`" for value in order if value in values)


def _kind(field: FieldInfo) -> str:
    annotation = field.annotation
    if get_origin(annotation) in (Union, UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not NoneType)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    kind = _KINDS[annotation]
    bounds = [
        f"{sign} {getattr(rule, attribute):g}"
        for rule in field.metadata
        for attribute, sign in _BOUNDS
        if getattr(rule, attribute, None) is not None
    ]
    return f"{kind}, {' and '.join(bounds)}" if bounds else kind


def _default(field: FieldInfo) -> str:
    return _shown(field.default) if field.default is not None else ""


def _shown(value: object) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _secret(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("secret"), str):
        return str(extra["secret"])
    return "yes" if SecretStr in (field.annotation, *get_args(field.annotation)) else "no"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """docs/configuration.md: the reference of every variable."""
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated from bot/config.py by `{REGENERATE}` (or `make docs`). "
        "Edit the descriptions there, not here. -->",
        "",
        "Gatehouse reads its settings from the environment, or from a `.env` file in its working",
        "directory; a variable set in the environment wins over the same one in `.env`. A",
        "malformed variable stops every command with one line naming it and what is wrong, and",
        "secret values are never echoed back. `gatehouse config` prints the settings in effect",
        "with secrets hidden; `gatehouse doctor` checks that Slack, Vault and the database",
        "accept them. [`deploy/.env.example`](../deploy/.env.example) lists them all, commented.",
        "",
        "*Required* says what `gatehouse run` refuses to start without; `yes` means in every",
        "setup. *Secret* values are hidden by `gatehouse config` and by the error messages.",
        "",
        "| variable | required | default | secret | type | what it is |",
        "|---|---|---|---|---|---|",
    ]
    for variable in variables():
        default = f"`{variable.default}`" if variable.default else "—"
        lines.append(
            f"| `{variable.name}` | {variable.required} | {_cell(default)} | {variable.secret} "
            f"| {_cell(variable.kind)} | {_cell(variable.description)} |"
        )
    return "\n".join(lines) + "\n"


def config(
    as_markdown: Annotated[
        bool,
        typer.Option(
            "--markdown",
            help="Print the reference of every variable in Markdown (docs/configuration.md) "
            "instead of the values in effect.",
        ),
    ] = False,
) -> None:
    """Show the settings in effect and where each comes from; secrets are never shown."""
    if as_markdown:
        typer.echo(markdown(), nl=False)
        return
    settings = settings_or_exit()
    from_environment = EnvSettingsSource(Settings)()
    from_dot_env = DotEnvSettingsSource(Settings, env_file=".env")()
    rows = []
    for variable in variables():
        if variable.name in from_environment:
            source = "environment"
        elif variable.name in from_dot_env:
            source = ".env"
        else:
            source = "default"
        rows.append((variable.name, _effective(settings, variable), source))
    width = max(len(name) for name, _, _ in rows)
    show_table(
        ["variable", "value", "from"],
        rows,
        plain=lambda: "\n".join(f"{n:<{width}}  {v}  ({s})" for n, v, s in rows),
    )


def _effective(settings: Settings, variable: Variable) -> str:
    value = getattr(settings, variable.field)
    if value is None:
        return "not set"
    if isinstance(value, SecretStr):
        return "set (hidden)"
    return redact_text(_shown(value))
