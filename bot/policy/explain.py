"""Describe one resource of a loaded policy in plain text."""

from collections.abc import Sequence

from bot.domain.durations import format_duration
from bot.domain.rules import AccessPolicy, Delivery, ResourceRule


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
            f"{rule.approvals_required} of {len(eligible)} eligible approvers"
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
        ("Sensitive", "yes" if rule.sensitive else "no"),
    ]
    return f"{rule.name}: {rule.description}", facts


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
