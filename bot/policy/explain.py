"""Describe one resource of a loaded policy in plain text."""

from collections.abc import Sequence

from bot.domain.durations import format_duration
from bot.domain.rules import AccessPolicy, Delivery, ResourceRule


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
        f"  Vault:              {_describe_vault(rule)}",
        f"  Delivery:           {_DELIVERY[rule.delivery]}",
        f"  Who may request:    {_describe_groups(policy, rule.requester_groups)}",
        f"  Who may approve:    {_describe_groups(policy, rule.approver_groups)}",
        f"  Approvals required: {rule.approvals_required} of {len(eligible)} eligible approvers"
        " (requesters never approve their own request)",
        f"  Extensions:         {rule.extension_approvals_required} approval(s) extend active "
        f"access in place, up to {format_duration(rule.max_ttl)} from the first issue",
        f"  Default TTL:        {format_duration(rule.default_ttl)}",
        f"  Max TTL:            {format_duration(rule.max_ttl)}",
        f"  Break-glass:        {break_glass}",
        f"  Sensitive:          {'yes' if rule.sensitive else 'no'}",
    ]
    return "\n".join(lines)


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
    parts = [
        f"{name} ({', '.join(sorted(policy.groups.get(name, ()))) or 'no members'})"
        for name in names
    ]
    return "; ".join(parts) or "nobody"
