"""Checks across fields: group references, TTL ordering, approver counts and the Vault target.

They run on the raw document and look only at values that parse on their own, so a resource
with a typo in one key still gets its TTLs compared.
"""

import difflib
from collections.abc import Mapping
from datetime import timedelta

from bot.domain.durations import format_duration, parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.rules import INCIDENT_COMMANDER
from bot.policy.models import GROUP_SOURCES, INCIDENT_DEFAULTS
from bot.policy.problems import Loc

_PAGERDUTY_SOURCES = ("pagerduty_schedule", "pagerduty_escalation_policy")


def cross_checks(raw: Mapping[object, object]) -> list[tuple[Loc, str]]:
    """Every cross-field problem in the raw document, with where it is."""
    found: list[tuple[Loc, str]] = []
    groups = raw.get("groups")
    known: set[str] | None = None
    members: dict[str, frozenset[str]] = {}
    sources: dict[str, str] = {}  # group name -> the one key that says where its members are
    if isinstance(groups, dict):
        known = {name for name in groups if isinstance(name, str)}
        for name, group in groups.items():
            if not isinstance(name, str) or not isinstance(group, dict):
                continue
            given = [key for key in GROUP_SOURCES if group.get(key) is not None]
            found.extend(_check_group(("groups", name), name, given))
            listed = _strings(group.get("members"))
            if listed:
                members[name] = frozenset(listed)
            if len(given) == 1:
                sources[name] = given[0]

    incident = raw.get("incident")
    if isinstance(incident, dict):
        admins = incident.get("admins")
        found.extend(_unknown_groups(("incident", "admins"), admins, known))
        found.extend(_unknown_groups(("incident", "invite"), incident.get("invite"), known))
        for name in _strings(admins) or []:
            if sources.get(name, "members") != "members":
                message = (
                    f"group {name!r} is a {sources[name]} group; incident admins must be a "
                    "group with listed members"
                )
                found.append((("incident", "admins"), message))
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
                found.extend(
                    _check_resource(("resources", name), resource, known, members, sources)
                )
    return found


def _check_group(loc: Loc, name: str, given: list[str]) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    if name == INCIDENT_COMMANDER:
        message = (
            f"{INCIDENT_COMMANDER!r} is reserved: list it among a resource's approvers to let "
            "the incident's commander approve; rename this group"
        )
        found.append((loc, message))
    if len(given) != 1:
        choices = ", ".join(GROUP_SOURCES)
        has = f"; this group has {' and '.join(given)}" if given else ""
        found.append((loc, f"set exactly one of {choices}{has}"))
    return found


def _check_resource(
    loc: Loc,
    resource: Mapping[object, object],
    known: set[str] | None,
    members: Mapping[str, frozenset[str]],
    sources: Mapping[str, str],
) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    found.extend(_unknown_groups((*loc, "requesters"), resource.get("requesters"), known))
    found.extend(
        _unknown_groups((*loc, "approvers"), resource.get("approvers"), known, commander_ok=True)
    )
    auto = resource.get("auto_approve")
    oncall = auto.get("oncall") if isinstance(auto, dict) else None
    if isinstance(oncall, str):
        where = (*loc, "auto_approve", "oncall")
        unknown = _unknown_groups(where, [oncall], known)
        found.extend(unknown)
        if oncall in sources and sources[oncall] not in _PAGERDUTY_SOURCES:
            message = (
                "must name a pagerduty_schedule or pagerduty_escalation_policy group; "
                f"{oncall!r} is a {sources[oncall]} group"
            )
            found.append((where, message))

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


def _unknown_groups(
    loc: Loc, value: object, known: set[str] | None, *, commander_ok: bool = False
) -> list[tuple[Loc, str]]:
    names = _strings(value)
    if known is None or names is None:
        return []
    found: list[tuple[Loc, str]] = []
    for name in names:
        if name == INCIDENT_COMMANDER and not commander_ok:
            message = (
                f"{INCIDENT_COMMANDER!r} stands for the incident's commander and can only be "
                "listed among approvers"
            )
            found.append((loc, message))
        elif name not in known and not (commander_ok and name == INCIDENT_COMMANDER):
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
