"""Describe one resource of a loaded policy in plain text."""

from collections.abc import Sequence

from bot.domain.durations import format_duration
from bot.domain.rules import AccessPolicy, VaultTarget


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
