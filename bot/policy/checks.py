"""Checks across fields: group references, TTL ordering, approver counts and the Vault target.

They run on the raw document and look only at values that parse on their own, so a resource
with a typo in one key still gets its TTLs compared.
"""

import difflib
from collections.abc import Mapping
from datetime import timedelta

from bot.domain.durations import format_duration, parse_duration
from bot.domain.errors import InvalidInput
from bot.policy.models import INCIDENT_DEFAULTS
from bot.policy.problems import Loc


def cross_checks(raw: Mapping[object, object]) -> list[tuple[Loc, str]]:
    """Every cross-field problem in the raw document, with where it is."""
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
            incident.get("request_timeout", format_duration(INCIDENT_DEFAULTS.request_timeout))
        )
        reminder = _duration_or_none(
            incident.get("reminder_after", format_duration(INCIDENT_DEFAULTS.reminder_after))
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
        elif has_policies and vault.get("policy") is not None:
            found.append(
                (
                    (*loc, "vault", "policy"),
                    "'policy' names the Vault policy for a 'path'; with 'token_policies' the "
                    "token carries exactly those policies, so leave 'policy' out",
                )
            )

    approvers = _strings(resource.get("approvers"))
    # Only count when every approver group resolved; otherwise the count would mislead.
    if approvers and all(group in members for group in approvers):
        eligible = frozenset().union(*(members[group] for group in approvers))
        for key in ("approvals_required", "extension_approvals_required"):
            required = resource.get(key, 1)
            if (
                isinstance(required, int)
                and not isinstance(required, bool)
                and required > len(eligible)
            ):
                message = (
                    f"needs {required} approvals but the approver groups "
                    f"({', '.join(approvers)}) have only {len(eligible)} distinct "
                    f"member{'' if len(eligible) == 1 else 's'} between them"
                )
                found.append(((*loc, key), message))
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
