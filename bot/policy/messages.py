"""Turn pydantic validation errors into plain-words problem messages."""

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from bot.policy.models import PolicyDocument
from bot.policy.problems import Loc, got

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
    "slack_usergroup": "must be a Slack user group ID like S0123ABCD, not its @handle",
    "pagerduty_schedule": "must be a PagerDuty ID like PABC123 (the end of its PagerDuty URL)",
    "pagerduty_escalation_policy": "must be a PagerDuty ID like PABC123 (the end of its "
    "PagerDuty URL)",
}
_KEY_MESSAGES = {
    "resources": "resource names are typed in /request-access, so use letters, digits, "
    "'.', '-' or '_', starting with a letter or digit",
}


def explain_error(detail: ErrorDetails) -> tuple[Loc, str]:
    """Where one pydantic error is, and what is wrong there in words."""
    loc: Loc = tuple(detail["loc"])
    kind = detail["type"]
    ctx = detail.get("ctx") or {}
    value = detail.get("input")
    if loc and loc[-1] == "[key]":
        if kind == "string_too_long":
            limit = ctx.get("max_length")
            hint = f"at most {limit} characters, the most a Slack form's choice can carry"
        else:
            hint = _KEY_MESSAGES.get(str(loc[0]), _TYPE_MESSAGES.get(kind, detail["msg"]))
        return loc[:-1], f"{loc[-2]!r} is not a valid name: {hint}"
    if kind == "extra_forbidden":
        return loc, _unknown_key(loc)
    if kind == "missing":
        return loc, "missing: this key is required"
    if kind == "model_type":
        model = _model_at(loc)
        allowed = f" with the keys {keys(model)}" if model else ""
        return loc, f"must be a mapping{allowed}{got(value)}"
    if loc == ("version",):
        return loc, f"unsupported version{got(value)}: this Gatehouse reads version 1"
    if kind == "literal_error":
        return loc, f"must be {ctx.get('expected')}{got(value)}"
    if kind == "greater_than_equal":
        return loc, f"must be at least {ctx.get('ge')}{got(value)}"
    if kind == "string_pattern_mismatch":
        field = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")
        return loc, f"{_PATTERN_MESSAGES.get(field, detail['msg'])}{got(value)}"
    if kind == "too_short" and loc[-1:] == ("members",):
        return loc, "a group needs at least one member"
    if kind in _TYPE_MESSAGES:
        return loc, f"{_TYPE_MESSAGES[kind]}{got(value)}"
    return loc, detail["msg"]


def keys(model: type[BaseModel]) -> str:
    """The keys a section allows, comma-separated."""
    return ", ".join(model.model_fields)


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
