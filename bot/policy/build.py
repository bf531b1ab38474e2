"""Build the domain's AccessPolicy from a validated policy document."""

import types
from collections.abc import Sequence

from bot.domain.rules import (
    AccessPolicy,
    BreakGlassTerms,
    Delivery,
    DynamicGroup,
    GroupSource,
    IncidentRules,
    Notify,
    ResourceRule,
    VaultTarget,
)
from bot.policy.models import GroupSection, PolicyDocument


def to_domain(document: PolicyDocument) -> AccessPolicy:
    """The AccessPolicy described by a document that passed every check."""
    section = document.incident
    incident = IncidentRules(
        channel_prefix=section.channel_prefix,
        admin_groups=_unique(section.admins),
        request_timeout=section.request_timeout,
        reminder_after=section.reminder_after,
        archive_on_close=section.archive_on_close,
        archive_after=section.archive_after,
        ops_channel=section.ops_channel,
        announce_channel=section.announce_channel,
        invite_groups=_unique(section.invite),
        expiry_warning=section.expiry_warning,
    )
    groups = {
        name: frozenset(group.members)
        for name, group in document.groups.items()
        if group.members is not None
    }
    dynamic = {
        name: _dynamic(name, group)
        for name, group in document.groups.items()
        if group.members is None
    }
    resources = {
        name: ResourceRule(
            name=name,
            description=spec.description,
            vault=VaultTarget(
                path=spec.vault.path,
                token_policies=tuple(spec.vault.token_policies or ()),
                policy=spec.vault.policy,
            ),
            default_ttl=spec.default_ttl,
            max_ttl=spec.max_ttl,
            requester_groups=_unique(spec.requesters),
            approver_groups=_unique(spec.approvers),
            approvals_required=spec.approvals_required,
            extension_approvals_required=spec.extension_approvals_required,
            break_glass=BreakGlassTerms(spec.break_glass.max_ttl) if spec.break_glass else None,
            sensitive=spec.sensitive,
            delivery=Delivery(spec.delivery),
            notify=Notify(spec.notify),
            auto_approve_oncall=spec.auto_approve.oncall if spec.auto_approve else None,
        )
        for name, spec in document.resources.items()
    }
    return AccessPolicy(
        incident=incident,
        groups=types.MappingProxyType(groups),
        resources=types.MappingProxyType(resources),
        dynamic_groups=types.MappingProxyType(dynamic),
    )


def _dynamic(name: str, group: GroupSection) -> DynamicGroup:
    """The dynamic group of a section that passed the checks (exactly one key is set)."""
    for source in GroupSource:
        ref = getattr(group, source.value)
        if ref is not None:
            return DynamicGroup(name, source, ref)
    raise ValueError(f"group {name!r} has no members and no source")


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
