"""Read `policy.yaml`, report everything wrong with it, and build the domain's AccessPolicy.

Validation runs in two passes so one run reports every problem, not just the first: pydantic
checks the shape and types of the whole document, then cross-field checks (group references, TTL
ordering, approver counts, the Vault target) run on the raw document, looking only at the values
that parse on their own. A resource with a typo in one key still gets its TTLs compared.
"""

import difflib
import types
import typing
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError

from bot.domain.durations import format_duration, parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.rules import (
    AccessPolicy,
    BreakGlassTerms,
    IncidentRules,
    ResourceRule,
    VaultTarget,
)

SUPPORTED_VERSION = 1
_INCIDENT_DEFAULTS = IncidentRules()
_DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
_DURATION_HINT = "like 90s, 45m, 2h or 1h30m"

Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file: where (`resources.x.max_ttl`) and what, in words."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PolicyError(Exception):
    """The policy file cannot be used; `problems` lists everything found wrong with it."""

    def __init__(self, problems: Iterable[PolicyProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


# --- The YAML document as pydantic models (also the source of the JSON Schema) ---------------


def _to_duration(value: object) -> timedelta:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration",
            "{reason}",
            {"reason": f"must be a duration with a unit, {_DURATION_HINT}{_got(value)}"},
        )
    try:
        return parse_duration(value)
    except InvalidInput as exc:
        raise PydanticCustomError("duration", "{reason}", {"reason": exc.message}) from None


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DURATION_PATTERN,
            "description": f"A duration: a number with a unit (d, h, m, s), {_DURATION_HINT}.",
            "examples": ["45m", "2h", "1h30m"],
        }
    ),
]
NonEmptyText = Annotated[str, Field(min_length=1)]
ResourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
SlackUserId = Annotated[str, Field(pattern=r"^[UW][A-Za-z0-9_]+$")]


def _duration_field(default: timedelta, description: str) -> Any:
    """A duration with a default; the schema shows the default as people write it (`30m`)."""
    return Field(
        default=default,
        description=description,
        json_schema_extra={"default": format_duration(default)},
    )


class _Section(BaseModel):
    # Strict: YAML already gives real types, so "2" is not silently taken as 2.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class IncidentSection(_Section):
    """How incidents are run."""

    channel_prefix: str = Field(
        default=_INCIDENT_DEFAULTS.channel_prefix,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,20}$",
        description="Incident channels are named <prefix>-<date>-<slug>.",
    )
    admins: list[str] = Field(
        default_factory=list,
        description="Groups whose members may close any incident besides its commander.",
    )
    request_timeout: Duration = _duration_field(
        _INCIDENT_DEFAULTS.request_timeout, "A pending request times out after this."
    )
    reminder_after: Duration = _duration_field(
        _INCIDENT_DEFAULTS.reminder_after, "Approvers are reminded once after this."
    )
    archive_on_close: bool = Field(
        default=_INCIDENT_DEFAULTS.archive_on_close,
        description="Archive the incident channel once the incident is closed.",
    )


class GroupSection(_Section):
    """A named set of Slack users."""

    members: list[SlackUserId] = Field(min_length=1, description="Slack user IDs, like U0123ABCD.")


class VaultSection(_Section):
    """Where Vault issues the credential: exactly one of `path` or `token_policies`."""

    path: NonEmptyText | None = Field(
        default=None, description="A dynamic secret path, like database/creds/readonly."
    )
    token_policies: list[NonEmptyText] | None = Field(
        default=None, min_length=1, description="Issue a Vault token with these policies."
    )


class BreakGlassSection(_Section):
    """Access that may be used before approval, and is reviewed after the fact."""

    max_ttl: Duration = Field(description="The longest break-glass access; at most max_ttl.")


class ResourceSection(_Section):
    """Something people may request access to."""

    description: NonEmptyText
    vault: VaultSection
    default_ttl: Duration = Field(description="Access length when the request names none.")
    max_ttl: Duration = Field(description="The longest access that may be granted.")
    requesters: list[str] = Field(min_length=1, description="Groups whose members may request.")
    approvers: list[str] = Field(min_length=1, description="Groups whose members may approve.")
    approvals_required: int = Field(
        default=1, ge=1, description="Distinct approvals needed; the requester never counts."
    )
    break_glass: BreakGlassSection | None = None
    sensitive: bool = False


class PolicyDocument(_Section):
    """Gatehouse access policy: who may request which production access, and who approves it."""

    model_config = ConfigDict(title="Gatehouse policy")

    version: Literal[1]
    incident: IncidentSection = Field(default_factory=IncidentSection)
    groups: dict[str, GroupSection]
    resources: dict[ResourceName, ResourceSection]


# --- Public API --------------------------------------------------------------------------------


def load_policy(path: str | Path) -> AccessPolicy:
    """Read and validate a policy file; raise PolicyError listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError([PolicyProblem(source, "file not found")]) from None
    except UnicodeDecodeError:
        raise PolicyError([PolicyProblem(source, "the file is not UTF-8 text")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PolicyError([PolicyProblem(source, f"cannot read the file: {reason}")]) from None
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "policy.yaml") -> AccessPolicy:
    """Validate policy YAML text; `source` names the file in document-level problems."""
    raw = _read_yaml(text, source)
    if not isinstance(raw, dict):
        message = (
            f"the top level must be a mapping with the keys {_keys(PolicyDocument)}; "
            f"this file is {_kind(raw)}"
        )
        raise PolicyError([PolicyProblem(source, message)])
    found: list[tuple[Loc, str]] = []
    document: PolicyDocument | None = None
    try:
        document = PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        found.extend(_explain_error(detail) for detail in exc.errors(include_url=False))
    found.extend(_cross_checks(raw))
    if found or document is None:
        found.sort(key=lambda item: _document_order(raw, item[0]))
        raise PolicyError(PolicyProblem(_dotted(loc), message) for loc, message in found)
    return _to_domain(document)


def check_policy(path: str | Path) -> list[PolicyProblem]:
    """Every problem in the policy file; empty when it is valid."""
    try:
        load_policy(path)
    except PolicyError as exc:
        return exc.problems
    return []


def explain_resource(policy: AccessPolicy, name: str) -> str:
    """Plain-text account of one resource; raises NotFound (listing known ones) if unknown."""
    rule = policy.resource(name)
    eligible = policy.approvers(rule)
    if rule.break_glass is None:
        break_glass = "no break-glass"
    else:
        limit = format_duration(rule.break_glass.max_ttl)
        break_glass = f"may be used before approval for up to {limit}; reviewed after the fact"
    lines = [
        f"{rule.name}: {rule.description}",
        f"  Vault:              {_describe_vault(rule.vault)}",
        f"  Who may request:    {_describe_groups(policy, rule.requester_groups)}",
        f"  Who may approve:    {_describe_groups(policy, rule.approver_groups)}",
        f"  Approvals required: {rule.approvals_required} of {len(eligible)} eligible approvers"
        " (requesters never approve their own request)",
        f"  Default TTL:        {format_duration(rule.default_ttl)}",
        f"  Max TTL:            {format_duration(rule.max_ttl)}",
        f"  Break-glass:        {break_glass}",
        f"  Sensitive:          {'yes' if rule.sensitive else 'no'}",
    ]
    return "\n".join(lines)


def policy_json_schema() -> dict[str, object]:
    """JSON Schema of policy.yaml, for editors (`# yaml-language-server: $schema=...`)."""
    schema: dict[str, object] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    schema.update(PolicyDocument.model_json_schema())
    return schema


# --- Reading YAML ------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key repeated in one mapping instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        reason = exc.problem or exc.context or "unreadable"
        raise PolicyError([PolicyProblem(where, f"not valid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([PolicyProblem(source, f"not valid YAML: {exc}")]) from None


# --- Turning pydantic errors into plain words --------------------------------------------------

_TYPE_MESSAGES = {
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "list_type": "must be a list, like [a, b]",
    "dict_type": "must be a mapping of names to settings",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
}
_PATTERN_MESSAGES = {
    "channel_prefix": "must be lowercase letters, digits, '-' or '_' (at most 21), "
    "because Slack channel names allow nothing else",
    "members": "must be a Slack user ID like U0123ABCD, not a name or an email address",
}
_KEY_MESSAGES = {
    "resources": "resource names are typed in /request-access, so use letters, digits, "
    "'.', '-' or '_', starting with a letter or digit",
}


def _explain_error(detail: ErrorDetails) -> tuple[Loc, str]:
    loc: Loc = tuple(detail["loc"])
    kind = detail["type"]
    ctx = detail.get("ctx") or {}
    value = detail.get("input")
    if loc and loc[-1] == "[key]":
        hint = _KEY_MESSAGES.get(str(loc[0]), _TYPE_MESSAGES.get(kind, detail["msg"]))
        return loc[:-1], f"{loc[-2]!r} is not a valid name: {hint}"
    if kind == "extra_forbidden":
        return loc, _unknown_key(loc)
    if kind == "missing":
        return loc, "missing: this key is required"
    if kind == "model_type":
        model = _model_at(loc)
        allowed = f" with the keys {_keys(model)}" if model else ""
        return loc, f"must be a mapping{allowed}{_got(value)}"
    if loc == ("version",):
        return loc, f"unsupported version{_got(value)}: this Gatehouse reads version 1"
    if kind == "literal_error":
        return loc, f"must be {ctx.get('expected')}{_got(value)}"
    if kind == "greater_than_equal":
        return loc, f"must be at least {ctx.get('ge')}{_got(value)}"
    if kind == "string_pattern_mismatch":
        field = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")
        return loc, f"{_PATTERN_MESSAGES.get(field, detail['msg'])}{_got(value)}"
    if kind == "too_short" and loc[-1:] == ("members",):
        return loc, "a group needs at least one member"
    if kind in _TYPE_MESSAGES:
        return loc, f"{_TYPE_MESSAGES[kind]}{_got(value)}"
    return loc, detail["msg"]


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown key {key!r}"
    allowed = list(model.model_fields)
    message = f"unknown key {key!r} (allowed: {', '.join(allowed)})"
    close = difflib.get_close_matches(key, allowed, n=1)
    return f"{message}; did you mean {close[0]!r}?" if close else message


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that validates the value found at `loc`, if it is one."""
    current: Any = PolicyDocument
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
        if isinstance(current, types.UnionType):
            current = next(arg for arg in typing.get_args(current) if arg is not type(None))
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _keys(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def _got(value: object) -> str:
    if isinstance(value, dict):
        return " (got a mapping)"
    if isinstance(value, list):
        return " (got a list)"
    if value is None:
        return " (got nothing)"
    if isinstance(value, str | int | float | bool):
        return f" (got {value!r})"
    return ""


def _kind(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a plain string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return f"a {type(value).__name__}"


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _document_order(raw: object, loc: Loc) -> tuple[int, ...]:
    """Sort key placing a problem where its key sits in the file (missing keys go last)."""
    order: list[int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            order.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            order.append(part)
            node = node[part]
        else:
            order.append(len(node) if isinstance(node, dict | list) else 0)
            break
    return tuple(order)


# --- Checks across fields ----------------------------------------------------------------------


def _cross_checks(raw: Mapping[object, object]) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    groups = raw.get("groups")
    known: set[str] | None = None
    members: dict[str, frozenset[str]] = {}
    if isinstance(groups, dict):
        known = {name for name in groups if isinstance(name, str)}
        for name, group in groups.items():
            listed = _strings(group.get("members")) if isinstance(group, dict) else None
            if isinstance(name, str) and listed:
                members[name] = frozenset(listed)

    incident = raw.get("incident")
    if isinstance(incident, dict):
        found.extend(_unknown_groups(("incident", "admins"), incident.get("admins"), known))
        timeout = _duration_or_none(
            incident.get("request_timeout", format_duration(_INCIDENT_DEFAULTS.request_timeout))
        )
        reminder = _duration_or_none(
            incident.get("reminder_after", format_duration(_INCIDENT_DEFAULTS.reminder_after))
        )
        if timeout and reminder and reminder >= timeout:
            message = (
                f"the reminder ({format_duration(reminder)}) must come before the request "
                f"times out (request_timeout is {format_duration(timeout)})"
            )
            found.append((("incident", "reminder_after"), message))

    resources = raw.get("resources")
    if isinstance(resources, dict):
        for name, resource in resources.items():
            if isinstance(resource, dict):
                found.extend(_check_resource(("resources", name), resource, known, members))
    return found


def _check_resource(
    loc: Loc,
    resource: Mapping[object, object],
    known: set[str] | None,
    members: Mapping[str, frozenset[str]],
) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    found.extend(_unknown_groups((*loc, "requesters"), resource.get("requesters"), known))
    found.extend(_unknown_groups((*loc, "approvers"), resource.get("approvers"), known))

    default_ttl = _duration_or_none(resource.get("default_ttl"))
    max_ttl = _duration_or_none(resource.get("max_ttl"))
    if default_ttl and max_ttl and default_ttl > max_ttl:
        message = (
            f"default_ttl ({format_duration(default_ttl)}) is longer than "
            f"max_ttl ({format_duration(max_ttl)})"
        )
        found.append(((*loc, "default_ttl"), message))
    break_glass = resource.get("break_glass")
    if isinstance(break_glass, dict):
        glass_ttl = _duration_or_none(break_glass.get("max_ttl"))
        if glass_ttl and max_ttl and glass_ttl > max_ttl:
            message = (
                f"break-glass access ({format_duration(glass_ttl)}) cannot last longer than "
                f"the resource's max_ttl ({format_duration(max_ttl)})"
            )
            found.append(((*loc, "break_glass", "max_ttl"), message))

    vault = resource.get("vault")
    if isinstance(vault, dict):
        has_path = vault.get("path") is not None
        has_policies = vault.get("token_policies") is not None
        if has_path == has_policies:
            message = (
                "set exactly one of 'path' (a dynamic secret) or 'token_policies' "
                f"(a Vault token); this has {'both' if has_path else 'neither'}"
            )
            found.append(((*loc, "vault"), message))

    required = resource.get("approvals_required", 1)
    approvers = _strings(resource.get("approvers"))
    # Only count when every approver group resolved; otherwise the count would mislead.
    if (
        isinstance(required, int)
        and not isinstance(required, bool)
        and required >= 1
        and approvers
        and all(group in members for group in approvers)
    ):
        eligible = frozenset().union(*(members[group] for group in approvers))
        if required > len(eligible):
            message = (
                f"needs {required} approvals but the approver groups ({', '.join(approvers)}) "
                f"have only {len(eligible)} distinct member{'' if len(eligible) == 1 else 's'}"
                " between them"
            )
            found.append(((*loc, "approvals_required"), message))
    return found


def _unknown_groups(loc: Loc, value: object, known: set[str] | None) -> list[tuple[Loc, str]]:
    names = _strings(value)
    if known is None or names is None:
        return []
    found: list[tuple[Loc, str]] = []
    for name in names:
        if name not in known:
            message = f"unknown group {name!r} (groups: {', '.join(sorted(known)) or 'none'})"
            close = difflib.get_close_matches(name, sorted(known), n=1)
            found.append((loc, f"{message}; did you mean {close[0]!r}?" if close else message))
    return found


def _strings(value: object) -> list[str] | None:
    """`value` when it is a list of strings, else None (pydantic reports what is wrong)."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _duration_or_none(value: object) -> timedelta | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_duration(value)
    except InvalidInput:
        return None


# --- Building the domain's form ----------------------------------------------------------------


def _to_domain(document: PolicyDocument) -> AccessPolicy:
    section = document.incident
    incident = IncidentRules(
        channel_prefix=section.channel_prefix,
        admin_groups=_unique(section.admins),
        request_timeout=section.request_timeout,
        reminder_after=section.reminder_after,
        archive_on_close=section.archive_on_close,
    )
    groups = {name: frozenset(group.members) for name, group in document.groups.items()}
    resources = {
        name: ResourceRule(
            name=name,
            description=spec.description,
            vault=VaultTarget(
                path=spec.vault.path, token_policies=tuple(spec.vault.token_policies or ())
            ),
            default_ttl=spec.default_ttl,
            max_ttl=spec.max_ttl,
            requester_groups=_unique(spec.requesters),
            approver_groups=_unique(spec.approvers),
            approvals_required=spec.approvals_required,
            break_glass=BreakGlassTerms(spec.break_glass.max_ttl) if spec.break_glass else None,
            sensitive=spec.sensitive,
        )
        for name, spec in document.resources.items()
    }
    return AccessPolicy(
        incident=incident,
        groups=types.MappingProxyType(groups),
        resources=types.MappingProxyType(resources),
    )


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _describe_vault(vault: VaultTarget) -> str:
    if vault.path:
        return f"dynamic secret at {vault.path}"
    return f"token with policies {', '.join(vault.token_policies)}"


def _describe_groups(policy: AccessPolicy, names: Sequence[str]) -> str:
    parts = [
        f"{name} ({', '.join(sorted(policy.groups.get(name, ()))) or 'no members'})"
        for name in names
    ]
    return "; ".join(parts) or "nobody"
