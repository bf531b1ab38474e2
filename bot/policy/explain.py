"""Describe one resource of a loaded policy in plain text, and what it means for one user now."""

from collections.abc import Sequence

from bot.domain.durations import format_duration
from bot.domain.eligibility import (
    Resolution,
    approvers_for,
    auto_approval,
    may_request,
    policy_for_request,
)
from bot.domain.rules import INCIDENT_COMMANDER, AccessPolicy, Delivery, Notify, ResourceRule


def explain_resource(policy: AccessPolicy, name: str) -> str:
    """Plain-text account of one resource; raises NotFound (listing known ones) if unknown."""
    heading, facts = resource_facts(policy, name)
    width = max(len(label) for label, _ in facts) + 2
    return "\n".join([heading, *(f"  {label + ':':<{width}}{value}" for label, value in facts)])


def resource_facts(policy: AccessPolicy, name: str) -> tuple[str, list[tuple[str, str]]]:
    """`name: description`, and (label, value) pairs saying who, how many and for how long."""
    rule = policy.resource(name)
    eligible = policy.approvers(rule)
    if rule.break_glass is None:
        break_glass = "no break-glass"
    else:
        limit = format_duration(rule.break_glass.max_ttl)
        break_glass = f"may be used before approval for up to {limit}; reviewed after the fact"
    facts = [
        ("Vault", _describe_vault(rule)),
        ("Delivery", _DELIVERY[rule.delivery]),
        ("Who may request", _describe_groups(policy, rule.requester_groups)),
        ("Who may approve", _describe_groups(policy, rule.approver_groups)),
        (
            "Approvals required",
            f"{rule.approvals_required} of {len(eligible)} {_approver_pool(policy, rule)}"
            " (requesters never approve their own request)",
        ),
        (
            "Extensions",
            f"{rule.extension_approvals_required} approval(s) extend active access in place, "
            f"up to {format_duration(rule.max_ttl)} from the first issue",
        ),
        ("Default TTL", format_duration(rule.default_ttl)),
        ("Max TTL", format_duration(rule.max_ttl)),
        ("Break-glass", break_glass),
        ("Auto-approval", _describe_auto_approval(policy, rule)),
        ("Sensitive", "yes" if rule.sensitive else "no"),
        ("Approvers told", _NOTIFY[rule.notify]),
    ]
    return f"{rule.name}: {rule.description}", facts


_NOTIFY = {
    Notify.TASKS: "each privately, as a task (the card in the channel mentions nobody)",
    Notify.CHANNEL_MENTION: "each privately, as a task, and mentioned on the card in the channel",
}

_DELIVERY = {
    Delivery.WRAPPED: "single-use Vault wrapping token, sent privately to the requester",
    Delivery.EPHEMERAL: "the secret itself, shown once and privately to the requester",
}


def _describe_vault(rule: ResourceRule) -> str:
    if rule.vault.path:
        return (
            f"dynamic secret at {rule.vault.path}, read with Vault policy {rule.vault_policies[0]}"
        )
    return f"token with policies {', '.join(rule.vault.token_policies)}"


def _describe_groups(policy: AccessPolicy, names: Sequence[str]) -> str:
    return "; ".join(f"{name} ({_describe_group(policy, name)})" for name in names) or "nobody"


def _describe_group(policy: AccessPolicy, name: str) -> str:
    if name == INCIDENT_COMMANDER:
        return "the incident's commander, never for their own request"
    group = policy.dynamic_groups.get(name)
    if group is None:
        return ", ".join(sorted(policy.groups.get(name, ()))) or "no members"
    if group.is_pagerduty:
        return f"whoever is on call in {group.describe()} when a request is filed"
    return f"members of {group.describe()} when a request is filed"


def _approver_pool(policy: AccessPolicy, rule: ResourceRule) -> str:
    later = [name for name in rule.approver_groups if name not in policy.groups]
    if not later:
        return "eligible approvers"
    return f"listed approvers, plus {', '.join(later)} when a request is filed"


def _describe_auto_approval(policy: AccessPolicy, rule: ResourceRule) -> str:
    name = rule.auto_approve_oncall
    if name is None:
        return "none"
    return (
        f"a requester on call in {name} ({policy.dynamic_groups[name].describe()}) gets access "
        "at once; approvers are told in the thread and may revoke it"
    )


def explain_for_user(policy: AccessPolicy, name: str, user: str, resolution: Resolution) -> str:
    """What `name` means for `user` now, given its dynamic groups looked up (`resolution`)."""
    rule = policy.resource(name)
    policy_now = policy_for_request(policy, resolution, commander_id=None)
    request = may_request(policy_now, rule, user)
    auto = auto_approval(policy_now, rule, resolution, user)
    approvers = approvers_for(policy_now, rule, user)
    lines = [
        f"{user} and {rule.name}, now:",
        f"  May request:        {_yes_no(request.yes)}: {request.because}",
        f"  Who could approve:  {_approvers_now(policy_now, rule, user)}",
        f"  Approvals required: {rule.approvals_required} of {len(approvers)} people now"
        + (" plus the incident's commander" if rule.commander_approves else ""),
        f"  Auto-approved:      {_yes_no(auto.yes)}: {auto.because}",
    ]
    if resolution.notes:
        lines.append("  Lookups that failed (those groups count as empty):")
        lines += [f"    - {note}" for note in resolution.notes]
    return "\n".join(lines)


def _approvers_now(policy_now: AccessPolicy, rule: ResourceRule, user: str) -> str:
    parts = []
    for name in rule.approver_groups:
        if name == INCIDENT_COMMANDER:
            parts.append(f"{name} (the incident's commander, unless that is {user})")
            continue
        members = sorted(policy_now.members([name]) - {user})
        parts.append(f"{name} ({', '.join(members) or 'nobody now'})")
    return "; ".join(parts)


def _yes_no(answer: bool) -> str:
    return "yes" if answer else "no"
