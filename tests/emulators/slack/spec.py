"""Argument validation from Slack's own per-method JSON (`tests/specs/slack/methods/<method>.json`).

The folder holds the methods the emulator models, the bot calls or a test uses (see its README);
a method without a file there is `unknown_method`, as in Slack. `GATEHOUSE_SLACK_SPECS` points
elsewhere (a folder with a `methods/` subfolder). Each method's `args` is a JSON-schema-like object
with `required`, `properties` (type, anyOf, enum, min/max...), and the method also lists its
`errors`, `rate_limits` tier, `http_method`, `json_input_supported` and bot/user `scope`.
The files are loaded when the emulator starts: missing or unreadable, it refuses to start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.specs import SPECS, SpecFilesMissing, shown

from .common import ApiError, invalid_arguments, missing_field, split_list, to_bool

# Arguments that carry JSON structures: form bodies send them as JSON strings, JSON bodies as-is.
JSON_ARGS = frozenset(
    {
        "blocks",
        "attachments",
        "unfurled_attachments",
        "metadata",
        "view",
        "files",
        "unfurls",
        "user_auth_blocks",
        "outputs",
        "profile",
        "file_ids",
        "prefs",
        "inputs",
        "options",
    }
)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    http_method: str
    required: tuple[str, ...]
    properties: Mapping[str, Mapping[str, Any]]
    errors: frozenset[str]
    rate_tier: str | None
    json_input: bool
    bot_scopes: tuple[str, ...]
    no_scope_required: bool


def specs_dir() -> Path:
    override = os.environ.get("GATEHOUSE_SLACK_SPECS")
    if override:
        return Path(override)
    return SPECS / "slack"


@cache
def _load(directory: Path) -> dict[str, MethodSpec]:
    methods = directory / "methods"
    specs: dict[str, MethodSpec] = {}
    for path in sorted(methods.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SpecFilesMissing(f"slack emulator: cannot read {shown(path)}: {error}") from None
        if not isinstance(document, dict) or "args" not in document:
            continue  # methods.json is an index, not a method
        args = document.get("args") or {}
        scope = document.get("scope") or {}
        specs[path.stem] = MethodSpec(
            name=path.stem,
            http_method=str(document.get("http_method", "POST")),
            required=tuple(args.get("required") or ()),
            properties=args.get("properties") or {},
            errors=frozenset((document.get("errors") or {}).keys()),
            rate_tier=document.get("rate_limits"),
            json_input=document.get("json_input_supported") is True,
            bot_scopes=tuple(scope.get("bot") or ()) if isinstance(scope, dict) else (),
            no_scope_required=bool(document.get("no_scope_required")),
        )
    if not specs:
        raise SpecFilesMissing(
            f"slack emulator: spec files missing at {shown(methods)}; restore them with "
            "`git checkout -- tests/specs/slack` or set GATEHOUSE_SLACK_SPECS"
        )
    return specs


def all_specs() -> dict[str, MethodSpec]:
    return _load(specs_dir())


def require(methods: Iterable[str]) -> dict[str, MethodSpec]:
    """Every spec, after checking that each of `methods` has one (SpecFilesMissing if not)."""
    specs = all_specs()
    absent = sorted(set(methods) - set(specs))
    if absent:
        raise SpecFilesMissing(
            f"slack emulator: no method JSON for {', '.join(absent)} in "
            f"{shown(specs_dir() / 'methods')}; copy it from the upstream named in its README"
        )
    return specs


def get_spec(method: str) -> MethodSpec | None:
    return all_specs().get(method)


# -- required arguments -----------------------------------------------------------------------

# What Slack answers when a required argument is absent, where it is not `invalid_arguments`.
_MISSING_OVERRIDES: dict[tuple[str, str], str] = {
    ("conversations.create", "name"): "invalid_name_required",
    ("chat.postMessage", "channel"): "channel_not_found",
    ("chat.postEphemeral", "channel"): "channel_not_found",
    ("chat.update", "channel"): "channel_not_found",
    ("chat.update", "ts"): "message_not_found",
    ("users.info", "user"): "user_not_found",
    ("users.lookupByEmail", "email"): "users_not_found",
}


def missing_error(spec: MethodSpec, name: str) -> ApiError:
    override = _MISSING_OVERRIDES.get((spec.name, name))
    if override:
        return ApiError(override)
    prop = spec.properties.get(name, {})
    subtype = prop.get("subtype")
    if subtype in ("channel", "channel_group") and "channel_not_found" in spec.errors:
        return ApiError("channel_not_found")
    if subtype == "user" and "user_not_found" in spec.errors:
        return ApiError("user_not_found")
    return invalid_arguments(missing_field(name))


def _blank(value: Any) -> bool:
    return value is None or value == ""


# -- types ------------------------------------------------------------------------------------


def _alternatives(prop: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "anyOf" in prop:
        return [alt for alt in prop["anyOf"] if isinstance(alt, Mapping)]
    if "allOf" in prop:  # views.open's view: {type: object, coerce} + internal schemas
        typed = [alt for alt in prop["allOf"] if isinstance(alt, Mapping) and "type" in alt]
        return typed or [prop]
    return [prop]


def _check_one(name: str, value: Any, prop: Mapping[str, Any], is_json: bool) -> str | None:
    """None when `value` fits `prop`, else Slack-style `[ERROR] ...` text."""
    pointer = f"[json-pointer:/{name}]"
    kind = prop.get("type")
    if kind is None:
        return None  # an internal schema ({"schema": "channel"}); the handler checks it
    if kind == "null":
        return None if value is None else f"[ERROR] must be null {pointer}"
    if kind == "boolean":
        return None if to_bool(value) is not None else f"[ERROR] must be a boolean {pointer}"
    if kind in ("integer", "number"):
        number = _number(value, integer=kind == "integer")
        if number is None:
            what = "an integer" if kind == "integer" else "a number"
            return f"[ERROR] must be {what} {pointer}"
        if "minimum" in prop and number < prop["minimum"]:
            return f"[ERROR] must be greater than or equal to {prop['minimum']} {pointer}"
        if "maximum" in prop and number > prop["maximum"]:
            return f"[ERROR] must be less than or equal to {prop['maximum']} {pointer}"
        return None
    if kind == "string":
        if isinstance(value, (list, dict)) and name in JSON_ARGS:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return f"[ERROR] must be a string {pointer}"  # numbers are coerced, like Slack does
        text = str(value)
        if "enum" in prop and text not in prop["enum"]:
            return f"[ERROR] must be a valid enum value {pointer}"
        if "maxLength" in prop and len(text) > int(prop["maxLength"]):
            return f"[ERROR] must be less than {int(prop['maxLength']) + 1} characters {pointer}"
        if "minLength" in prop and len(text) < int(prop["minLength"]):
            return f"[ERROR] must be more than {int(prop['minLength']) - 1} characters {pointer}"
        return None
    if kind == "array":
        return _check_array(name, value, prop)
    if kind == "object":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return f"[ERROR] must provide an object {pointer}"
        return None if isinstance(value, dict) else f"[ERROR] must provide an object {pointer}"
    return None


def _number(value: Any, *, integer: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value)
    if isinstance(value, float):
        return None if integer and not value.is_integer() else value
    if isinstance(value, str):
        try:
            return float(int(value.strip())) if integer else float(value.strip())
        except ValueError:
            return None
    return None


def _check_array(name: str, value: Any, prop: Mapping[str, Any]) -> str | None:
    pointer = f"[json-pointer:/{name}]"
    items_schema = prop.get("items") or {}
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except ValueError:
                return f"[ERROR] must provide an array {pointer}"
        elif items_schema.get("type", "string") == "string":
            value = split_list(value)
        else:
            return f"[ERROR] must provide an array {pointer}"
    if not isinstance(value, list):
        return f"[ERROR] must provide an array {pointer}"
    if "maxItems" in prop and len(value) > int(prop["maxItems"]):
        return f"[ERROR] no more than {prop['maxItems']} items allowed {pointer}"
    if "minItems" in prop and len(value) < int(prop["minItems"]):
        return f"[ERROR] must provide at least {prop['minItems']} items {pointer}"
    if items_schema.get("type") == "object":
        for index, item in enumerate(value):
            item_pointer = f"[json-pointer:/{name}/{index}]"
            if not isinstance(item, dict):
                return f"[ERROR] must provide an object {item_pointer}"
            for field_name in items_schema.get("required") or ():
                if _blank(item.get(field_name)):
                    return missing_field(field_name, f"/{name}/{index}")
            for key, sub in (items_schema.get("properties") or {}).items():
                if key in item and item[key] is not None:
                    problem = _check_one(f"{name}/{index}/{key}", item[key], sub, True)
                    if problem:
                        return problem
    elif items_schema.get("type") == "string":
        for index, item in enumerate(value):
            if not isinstance(item, str):
                return f"[ERROR] must be a string [json-pointer:/{name}/{index}]"
    return None


def check_value(name: str, value: Any, prop: Mapping[str, Any], is_json: bool) -> str | None:
    problems = []
    for alternative in _alternatives(prop):
        problem = _check_one(name, value, {**prop, **alternative}, is_json)
        if problem is None:
            return None
        problems.append(problem)
    if len(problems) == 1:
        return problems[0]
    return f"[ERROR] failed to match all allowed schemas [json-pointer:/{name}]"


def validate_args(spec: MethodSpec, args: Mapping[str, Any], *, is_json: bool) -> None:
    """Raise the ApiError Slack would send for missing or wrongly typed arguments."""
    for name in spec.required:
        if name != "token" and _blank(args.get(name)):
            raise missing_error(spec, name)
    problems: list[str] = []
    for name, value in args.items():
        prop = spec.properties.get(name)
        if name == "token" or prop is None or value is None:
            continue  # Slack ignores arguments a method does not know
        problem = check_value(name, value, prop, is_json)
        if problem:
            problems.append(problem)
    if problems:
        raise invalid_arguments(*problems)
