"""The access policy as the domain sees it: who may request, who may approve, for how long.

`bot.policy` reads `policy.yaml` and builds these objects; the domain and the services only ever
see this validated form.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum

from bot.domain.durations import format_duration
from bot.domain.errors import InvalidInput, NotAllowed, NotFound

INCIDENT_COMMANDER = "incident_commander"
"""Listed among a resource's approvers: the commander of the incident the request is filed in."""


class GroupSource(StrEnum):
    """Where a dynamic group's members come from when a request is filed."""

    SLACK_USERGROUP = "slack_usergroup"
    PAGERDUTY_SCHEDULE = "pagerduty_schedule"
    PAGERDUTY_ESCALATION_POLICY = "pagerduty_escalation_policy"


_SOURCE_WORDS = {
    GroupSource.SLACK_USERGROUP: "Slack user group",
    GroupSource.PAGERDUTY_SCHEDULE: "PagerDuty schedule",
    GroupSource.PAGERDUTY_ESCALATION_POLICY: "PagerDuty escalation policy",
}


@dataclass(frozen=True)
class DynamicGroup:
    """A group looked up when a request is filed: the members of a Slack user group, or
    whoever is on call right then in a PagerDuty schedule or escalation policy."""

    name: str
    source: GroupSource
    ref: str  # S0123ABCD for a Slack user group, PABC123 for PagerDuty

    @property
    def is_pagerduty(self) -> bool:
        return self.source is not GroupSource.SLACK_USERGROUP

    def describe(self) -> str:
        """`PagerDuty schedule PABC123`."""
        return f"{_SOURCE_WORDS[self.source]} {self.ref}"


@dataclass(frozen=True)
class BreakGlassTerms:
    """A resource that may be used before approval, reviewed after the fact."""

    max_ttl: timedelta


class Delivery(StrEnum):
    """How the credential reaches the requester."""

    WRAPPED = "wrapped"  # a single-use Vault wrapping token; Gatehouse never sees the secret
    EPHEMERAL = "ephemeral"  # the secret itself, shown once to the requester only


class Notify(StrEnum):
    """Who a new request's card calls on in its channel."""

    TASKS = "tasks"  # nobody: each approver gets the request as a task, privately
    CHANNEL_MENTION = "channel-mention"  # the card mentions the approvers too


@dataclass(frozen=True)
class VaultTarget:
    """Where Vault issues the credential: a dynamic secret path, or a token with policies.

    For a path, `policy` names the Vault policy that may read it (default `gatehouse-<resource>`);
    the per-grant token gets exactly that policy.
    """

    path: str | None = None
    token_policies: tuple[str, ...] = ()
    policy: str | None = None

    @property
    def kind(self) -> str:
        return "dynamic_secret" if self.path else "token"


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    vault: VaultTarget
    default_ttl: timedelta
    max_ttl: timedelta
    requester_groups: tuple[str, ...]
    approver_groups: tuple[str, ...]
    approvals_required: int
    break_glass: BreakGlassTerms | None = None
    sensitive: bool = False
    delivery: Delivery = Delivery.WRAPPED
    extension_approvals_required: int = 1
    auto_approve_oncall: str | None = None  # a PagerDuty group: whoever is on call there now
    notify: Notify = Notify.TASKS

    @property
    def mentions_approvers(self) -> bool:
        """Whether the card in the channel mentions the approvers (they get tasks either way)."""
        return self.notify is Notify.CHANNEL_MENTION

    @property
    def commander_approves(self) -> bool:
        return INCIDENT_COMMANDER in self.approver_groups

    @property
    def vault_policies(self) -> tuple[str, ...]:
        """The Vault policies a grant token for this resource carries."""
        if self.vault.path:
            return (self.vault.policy or f"gatehouse-{self.name}",)
        return self.vault.token_policies

    def granted_duration(
        self, requested: timedelta | None, *, break_glass: bool = False
    ) -> timedelta:
        """`resolve_duration`; for break-glass, which asks no approval first, then capped at the
        break-glass TTL. Above `max_ttl` is refused either way, naming the limit, so a duration
        means the same in every command. Raises NotAllowed where there is no break-glass."""
        if not break_glass:
            return self.resolve_duration(requested)
        if self.break_glass is None:
            raise NotAllowed(
                f"{self.name} has no break-glass: ask for it without break-glass and wait for "
                "approval."
            )
        return min(self.resolve_duration(requested), self.break_glass.max_ttl)

    def resolve_duration(self, requested: timedelta | None) -> timedelta:
        """The duration a request gets: the default when omitted, never above `max_ttl`."""
        if requested is None:
            return self.default_ttl
        if requested <= timedelta(0):
            raise InvalidInput("The duration must be longer than zero.")
        if requested > self.max_ttl:
            raise InvalidInput(
                f"{self.name} can be granted for at most {format_duration(self.max_ttl)}; "
                f"you asked for {format_duration(requested)}."
            )
        return requested


@dataclass(frozen=True)
class IncidentRules:
    channel_prefix: str = "inc"
    admin_groups: tuple[str, ...] = ()
    request_timeout: timedelta = timedelta(minutes=30)
    reminder_after: timedelta = timedelta(minutes=10)
    archive_on_close: bool = True
    # How long a closed incident's channel stays open for discussion before it is archived
    # (zero: at once). Only when `archive_on_close`: without it the channel is never archived.
    archive_after: timedelta = timedelta(hours=24)
    ops_channel: str | None = None  # operators' channel: what went wrong, in detail
    announce_channel: str | None = None  # one line for each incident opened and closed
    invite_groups: tuple[str, ...] = ()  # invited to every incident channel when it is made
    # The requester is warned this long before access ends; zero: never.
    expiry_warning: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class AccessPolicy:
    """Groups resolved to members, resources, and incident rules.

    `groups` holds the members known now: the listed ones, and dynamic groups once they have
    been looked up for a request (`with_members`). A dynamic group not looked up has nobody.
    """

    incident: IncidentRules
    groups: Mapping[str, frozenset[str]]
    resources: Mapping[str, ResourceRule]
    dynamic_groups: Mapping[str, DynamicGroup] = field(default_factory=dict)
    _empty: frozenset[str] = field(default=frozenset(), repr=False)

    def resource(self, name: str) -> ResourceRule:
        try:
            return self.resources[name]
        except KeyError:
            known = ", ".join(sorted(self.resources)) or "none"
            raise NotFound(
                f"There is no resource called '{name}'. Known resources: {known}."
            ) from None

    def members(self, group_names: Iterable[str]) -> frozenset[str]:
        found: set[str] = set()
        for name in group_names:
            found |= self.groups.get(name, self._empty)
        return frozenset(found)

    def requesters(self, resource: ResourceRule) -> frozenset[str]:
        return self.members(resource.requester_groups)

    def approvers(self, resource: ResourceRule) -> frozenset[str]:
        return self.members(resource.approver_groups)

    def can_request(self, user_id: str, resource: ResourceRule) -> bool:
        return user_id in self.requesters(resource)

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.members(self.incident.admin_groups)

    def with_members(self, looked_up: Mapping[str, frozenset[str]]) -> "AccessPolicy":
        """This policy with the members of groups looked up for one request."""
        return replace(self, groups={**self.groups, **looked_up})

    def dynamic_groups_of(self, resource: ResourceRule) -> tuple[DynamicGroup, ...]:
        """The dynamic groups a request for `resource` needs looked up, each once."""
        names = [*resource.requester_groups, *resource.approver_groups]
        if resource.auto_approve_oncall:
            names.append(resource.auto_approve_oncall)
        return tuple(
            self.dynamic_groups[n] for n in dict.fromkeys(names) if n in self.dynamic_groups
        )

    @property
    def vault_policies(self) -> tuple[str, ...]:
        """Every policy some grant may carry: what an incident token must hold."""
        return tuple(sorted({p for rule in self.resources.values() for p in rule.vault_policies}))
