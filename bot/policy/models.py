"""The policy.yaml document as pydantic models, which are also the source of its JSON Schema."""

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from bot.domain.durations import (
    ACCEPTED_FORMS,
    DURATION_PATTERN,
    format_duration,
    parse_duration,
)
from bot.domain.errors import InvalidInput
from bot.domain.rules import IncidentRules
from bot.policy.problems import got

SUPPORTED_VERSION = 1
INCIDENT_DEFAULTS = IncidentRules()
_DURATION_HINT = f"like {ACCEPTED_FORMS}"


def _to_duration(value: object) -> timedelta:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration",
            "{reason}",
            {"reason": f"must be a duration with a unit, {_DURATION_HINT}{got(value)}"},
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
            "pattern": DURATION_PATTERN,
            "description": f"A duration: a number with a unit (d, h, m, s), {_DURATION_HINT}.",
            "examples": ["45m", "2h", "1h30m"],
        }
    ),
]


def _to_duration_or_zero(value: object) -> timedelta:
    """A duration, or zero written `0`."""
    if (value == 0 and not isinstance(value, bool)) or value in ("0", "0s", "0m", "0h"):
        return timedelta(0)
    return _to_duration(value)


DurationOrZero = Annotated[
    timedelta,
    BeforeValidator(_to_duration_or_zero),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": 0},
                {"type": "string", "pattern": f"^0$|{DURATION_PATTERN}"},
            ],
            "description": f"A duration ({_DURATION_HINT}), or 0 for none.",
            "examples": ["0", "24h", "3d"],
        }
    ),
]
NonEmptyText = Annotated[str, Field(min_length=1)]
# At most 150 characters: the resource is chosen in forms by its name, and a Slack option's
# value holds no more.
ResourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=150)]
SlackUserId = Annotated[str, Field(pattern=r"^[UW][A-Za-z0-9_]+$")]
SlackChannelId = Annotated[str, Field(pattern=r"^[CG][A-Z0-9]+$")]
SlackUserGroupId = Annotated[str, Field(pattern=r"^S[A-Z0-9]+$")]
PagerDutyId = Annotated[str, Field(pattern=r"^P[A-Z0-9]+$")]
GROUP_SOURCES = ("members", "slack_usergroup", "pagerduty_schedule", "pagerduty_escalation_policy")


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
        default=INCIDENT_DEFAULTS.channel_prefix,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,20}$",
        description="Incident channels are named <prefix>-<date>-<slug>.",
    )
    admins: list[str] = Field(
        default_factory=list,
        description="Groups whose members may close any incident besides its commander.",
    )
    request_timeout: Duration = _duration_field(
        INCIDENT_DEFAULTS.request_timeout, "A pending request times out after this."
    )
    reminder_after: Duration = _duration_field(
        INCIDENT_DEFAULTS.reminder_after, "Approvers are reminded once after this."
    )
    archive_on_close: bool = Field(
        default=INCIDENT_DEFAULTS.archive_on_close,
        description="Archive the incident channel after the close (see archive_after); false: "
        "never archive it.",
    )
    archive_after: DurationOrZero = Field(
        default=INCIDENT_DEFAULTS.archive_after,
        description="With archive_on_close: how long the channel stays open for discussion "
        "after the close before it is archived; 0 archives it at once.",
        json_schema_extra={"default": format_duration(INCIDENT_DEFAULTS.archive_after)},
    )
    invite: list[str] = Field(
        default_factory=list,
        description="Groups whose members are invited to every incident channel when it is "
        "made, besides the opener.",
    )
    announce_channel: SlackChannelId | None = Field(
        default=None,
        description="A channel ID (C0123ABCD): one line there for each incident opened and closed.",
    )
    ops_channel: SlackChannelId | None = Field(
        default=None,
        description="A channel ID for Gatehouse's operators: the details of what went wrong "
        "(a group that could not be looked up), which incident channels only mention plainly.",
    )
    expiry_warning: DurationOrZero = Field(
        default=INCIDENT_DEFAULTS.expiry_warning,
        description="The requester is warned by direct message this long before access ends, "
        "with an Extend button; 0: never.",
        json_schema_extra={"default": format_duration(INCIDENT_DEFAULTS.expiry_warning)},
    )


class GroupSection(_Section):
    """A named set of Slack users: listed, a Slack user group, or whoever is on call in
    PagerDuty. Exactly one of the keys."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    members: list[SlackUserId] | None = Field(
        default=None, min_length=1, description="Slack user IDs, like U0123ABCD."
    )
    slack_usergroup: SlackUserGroupId | None = Field(
        default=None,
        description="A Slack user group ID (S0123ABCD); its members are read when a request is "
        "filed and shown by the group's @handle.",
    )
    pagerduty_schedule: PagerDutyId | None = Field(
        default=None, description="A PagerDuty schedule ID: whoever is on call in it right now."
    )
    pagerduty_escalation_policy: PagerDutyId | None = Field(
        default=None,
        description="A PagerDuty escalation policy ID: whoever is on call in it right now.",
    )


class VaultSection(_Section):
    """Where Vault issues the credential: exactly one of `path` or `token_policies`."""

    path: NonEmptyText | None = Field(
        default=None, description="A dynamic secret path, like database/creds/readonly."
    )
    token_policies: list[NonEmptyText] | None = Field(
        default=None, min_length=1, description="Issue a Vault token with these policies."
    )
    policy: NonEmptyText | None = Field(
        default=None,
        description=(
            "With `path`: the Vault policy that may read it, given to each grant token "
            "(default gatehouse-<resource>, as deploy/vault/setup.sh creates)."
        ),
    )


class BreakGlassSection(_Section):
    """Access that may be used before approval, and is reviewed after the fact."""

    max_ttl: Duration = Field(description="The longest break-glass access; at most max_ttl.")


class AutoApproveSection(_Section):
    """Approve without waiting when the requester is on call."""

    oncall: str = Field(
        description="A pagerduty_schedule or pagerduty_escalation_policy group. A requester on "
        "call there right now gets access at once; approvers are told and may revoke it."
    )


class ResourceSection(_Section):
    """Something people may request access to."""

    description: NonEmptyText
    vault: VaultSection
    default_ttl: Duration = Field(description="Access length when the request names none.")
    max_ttl: Duration = Field(description="The longest access that may be granted.")
    requesters: list[str] = Field(min_length=1, description="Groups whose members may request.")
    approvers: list[str] = Field(
        min_length=1,
        description="Groups whose members may approve; `incident_commander` adds the commander "
        "of the request's incident (never for their own request).",
    )
    approvals_required: int = Field(
        default=1, ge=1, description="Distinct approvals needed; the requester never counts."
    )
    extension_approvals_required: int = Field(
        default=1,
        ge=1,
        description="Distinct approvals needed to extend active access in place.",
    )
    break_glass: BreakGlassSection | None = None
    auto_approve: AutoApproveSection | None = None
    sensitive: bool = False
    delivery: Literal["wrapped", "ephemeral"] = Field(
        default="wrapped",
        description=(
            "wrapped: a single-use Vault wrapping token reaches the requester; ephemeral: the "
            "secret itself, shown once to the requester only. Neither is ever stored."
        ),
    )
    notify: Literal["tasks", "channel-mention"] = Field(
        default="tasks",
        description=(
            "tasks: each approver gets the request privately (a direct message and App Home) "
            "and the card in the incident channel mentions nobody; channel-mention: the card "
            "mentions the approvers too."
        ),
    )


class PolicyDocument(_Section):
    """Gatehouse access policy: who may request which production access, and who approves it."""

    model_config = ConfigDict(title="Gatehouse policy")

    version: Literal[1]
    incident: IncidentSection = Field(default_factory=IncidentSection)
    groups: dict[str, GroupSection]
    resources: dict[ResourceName, ResourceSection]


def policy_json_schema() -> dict[str, object]:
    """JSON Schema of policy.yaml, for editors (`# yaml-language-server: $schema=...`)."""
    schema: dict[str, object] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    schema.update(PolicyDocument.model_json_schema())
    return schema
