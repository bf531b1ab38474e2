"""What happened, as typed events: every domain transition is told as one of these.

Each event is a frozen dataclass with the fields its readers need. The unit of work appends it to
the audit hash chain in the same transaction as the change (`to_entry`); the chain is the outbox,
and whoever reads it (the close summary, the Slack notifier, the exports) gets the same typed
event back (`from_entry`). The field names are the keys the chain has always stored, so events
written before they were typed read back unchanged: history is read, never rewritten.
"""

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Self

from bot.domain.audit import Action, AuditEntry, utc_iso

# Fields every event has, stored beside `data` rather than inside it.
_ENVELOPE = frozenset({"at", "actor", "incident_id", "request_id"})


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """One thing that happened, by whom (None: Gatehouse itself), when, to what."""

    action: ClassVar[Action]

    at: datetime
    actor: str | None = None
    incident_id: str | None = None
    request_id: str | None = None

    def stored_action(self) -> Action:
        """The action name the chain stores; one per class except where history has two."""
        return self.action

    def to_entry(self) -> AuditEntry:
        data = {
            field.name: _encode(getattr(self, field.name))
            for field in fields(self)
            if field.name not in _ENVELOPE
        }
        return AuditEntry(
            action=self.stored_action().value,
            at=self.at,
            actor=self.actor,
            incident_id=self.incident_id,
            request_id=self.request_id,
            data=data,
        )

    @classmethod
    def decode(cls, entry: AuditEntry) -> Self:
        hints = _hints(cls)
        values: dict[str, Any] = {
            name: _decode(hints[name], entry.data[name])
            for name in hints
            if name not in _ENVELOPE and name in entry.data
        }
        return cls(
            at=entry.at,
            actor=entry.actor,
            incident_id=entry.incident_id,
            request_id=entry.request_id,
            **values,
        )


# --- incidents ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IncidentOpened(DomainEvent):
    action = Action.INCIDENT_OPENED
    title: str = ""
    severity: str = ""
    channel_id: str = ""
    channel_name: str = ""
    commander: str = ""


@dataclass(frozen=True, kw_only=True)
class IncidentChannelCreated(DomainEvent):
    """The Slack channel of an incident recorded without one (its `IncidentOpened` names no
    channel); `late` when recovery made it after the opening stopped or Slack failed."""

    action = Action.INCIDENT_CHANNEL_CREATED
    channel_id: str = ""
    channel_name: str = ""
    late: bool = False


@dataclass(frozen=True, kw_only=True)
class CommanderChanged(DomainEvent):
    action = Action.COMMANDER_CHANGED
    previous: str = ""
    commander: str = ""


@dataclass(frozen=True, kw_only=True)
class IncidentClosed(DomainEvent):
    action = Action.INCIDENT_CLOSED
    resolution: str | None = None


# --- requests and their approvals ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RequestFiled(DomainEvent):
    action = Action.REQUEST_FILED
    resource: str = ""
    duration: str = ""
    reason: str = ""
    approvals_required: int = 0
    approvers: tuple[str, ...] = ()
    break_glass: bool = False


@dataclass(frozen=True, kw_only=True)
class DecisionRecorded(DomainEvent):
    """One approver's Approve or Deny on a request (break-glass reviews included)."""

    action = Action.REQUEST_DECIDED
    verdict: str = ""
    reason: str | None = None
    approvals: int = 0
    approvals_required: int = 0


@dataclass(frozen=True, kw_only=True)
class RequestApproved(DomainEvent):
    action = Action.REQUEST_APPROVED
    approvers: tuple[str, ...] = ()
    automatic: bool = False


@dataclass(frozen=True, kw_only=True)
class AutoApproved(DomainEvent):
    """On-call auto-approval, with the shift that justified it."""

    action = Action.REQUEST_AUTO_APPROVED
    group: str = ""
    source: str = ""
    ref: str = ""
    because: str = ""
    pagerduty_user_id: str | None = None
    escalation_policy_id: str | None = None
    escalation_level: int | None = None
    schedule_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class GroupLookupFailed(DomainEvent):
    action = Action.GROUP_LOOKUP_FAILED
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class RequestDenied(DomainEvent):
    action = Action.REQUEST_DENIED
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class RequestCancelled(DomainEvent):
    """Ended before any credential: by its requester, the incident's close or a break-glass
    deny."""

    action = Action.REQUEST_CANCELLED
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class RequestTimedOut(DomainEvent):
    action = Action.REQUEST_TIMED_OUT
    reason: str = "nobody decided in time"


@dataclass(frozen=True, kw_only=True)
class ApproversReminded(DomainEvent):
    action = Action.REQUEST_REMINDED
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RequestFailed(DomainEvent):
    """Vault refused the credential: the request ends without access."""

    action = Action.REQUEST_FAILED
    error: str = ""


class EndCause(StrEnum):
    EXPIRED = "expired"
    REVOKED = "revoked"
    INCIDENT_CLOSED = "incident closed"
    UNDELIVERED = "undelivered"
    BREAK_GLASS_DENIED = "break-glass denied"


@dataclass(frozen=True, kw_only=True)
class AccessEnded(DomainEvent):
    """Issued access ended, and why. Stored as `request.expired` or `request.revoked` with its
    reason in words, as it always was; `why` is read back from those two."""

    action = Action.REQUEST_REVOKED
    why: EndCause = EndCause.REVOKED
    reason: str | None = None

    def stored_action(self) -> Action:
        return Action.REQUEST_EXPIRED if self.why is EndCause.EXPIRED else Action.REQUEST_REVOKED

    def to_entry(self) -> AuditEntry:
        entry = super().to_entry()
        data = {key: value for key, value in entry.data.items() if key != "why"}
        return AuditEntry(
            action=entry.action,
            at=entry.at,
            actor=entry.actor,
            incident_id=entry.incident_id,
            request_id=entry.request_id,
            data=data,
        )

    @classmethod
    def decode(cls, entry: AuditEntry) -> Self:
        reason = entry.data.get("reason")
        return cls(
            at=entry.at,
            actor=entry.actor,
            incident_id=entry.incident_id,
            request_id=entry.request_id,
            why=_end_cause(entry.action, reason if isinstance(reason, str) else None),
            reason=reason if isinstance(reason, str) else None,
        )


@dataclass(frozen=True, kw_only=True)
class ExpiryWarned(DomainEvent):
    """The requester was due a warning that access ends soon: told once per end."""

    action = Action.EXPIRY_WARNED
    ends_at: datetime | None = None


def _end_cause(action: str, reason: str | None) -> EndCause:
    if action == Action.REQUEST_EXPIRED:
        return EndCause.EXPIRED
    text = reason or ""
    if text == EndCause.INCIDENT_CLOSED.value:
        return EndCause.INCIDENT_CLOSED
    if text.startswith("break-glass denied"):
        return EndCause.BREAK_GLASS_DENIED
    if text.startswith("the credential was never delivered"):
        return EndCause.UNDELIVERED
    return EndCause.REVOKED


# --- break-glass --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BreakGlassUsed(DomainEvent):
    action = Action.BREAK_GLASS_USED
    reviewers: tuple[str, ...] = ()
    reviews_required: int = 0


@dataclass(frozen=True, kw_only=True)
class BreakGlassConfirmed(DomainEvent):
    """Enough reviewers confirmed break-glass access after the fact. (A deny ends it: an
    `AccessEnded` or `RequestCancelled` with its reason.)"""

    action = Action.BREAK_GLASS_REVIEWED
    approvers: tuple[str, ...] = ()


# --- extensions ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ExtensionAsked(DomainEvent):
    action = Action.EXTENSION_REQUESTED
    extension_id: str = ""
    duration: str = ""
    reason: str | None = None
    ends_at: datetime | None = None  # the access's end when it was asked
    approvals_required: int = 0
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ExtensionDecided(DomainEvent):
    action = Action.EXTENSION_DECIDED
    extension_id: str = ""
    verdict: str = ""
    reason: str | None = None
    approvals: int = 0


@dataclass(frozen=True, kw_only=True)
class ExtensionApproved(DomainEvent):
    action = Action.EXTENSION_APPROVED
    extension_id: str = ""
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ExtensionDenied(DomainEvent):
    action = Action.EXTENSION_DENIED
    extension_id: str = ""
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExtensionApplied(DomainEvent):
    action = Action.EXTENSION_APPLIED
    grant_id: str = ""
    extension_id: str = ""
    previous_ends_at: datetime | None = None
    ends_at: datetime | None = None
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ExtensionFailed(DomainEvent):
    action = Action.EXTENSION_FAILED
    extension_id: str = ""
    error: str = ""


# --- credentials --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IssueStarted(DomainEvent):
    """The grant is on record (ISSUING) before Vault is asked."""

    action = Action.GRANT_ISSUING
    grant_id: str = ""
    ends_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Issued(DomainEvent):
    action = Action.GRANT_ISSUED
    grant_id: str = ""
    lease_id: str | None = None
    token_accessor: str | None = None
    wrapping_accessor: str | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Delivered(DomainEvent):
    """The requester was handed the credential (the secret itself is never recorded)."""

    action = Action.GRANT_DELIVERED
    grant_id: str = ""


@dataclass(frozen=True, kw_only=True)
class IssueFailed(DomainEvent):
    action = Action.GRANT_ISSUE_FAILED
    grant_id: str = ""
    error: str = ""
    retrying: bool = False


@dataclass(frozen=True, kw_only=True)
class RevocationRequested(DomainEvent):
    action = Action.GRANT_REVOCATION_REQUESTED
    grant_id: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RevocationConfirmed(DomainEvent):
    action = Action.GRANT_REVOKED
    grant_id: str = ""
    confirmed_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class RevocationFailed(DomainEvent):
    action = Action.GRANT_REVOCATION_FAILED
    grant_id: str = ""
    error: str | None = None
    attempts: int = 0


# --- Vault's incident tokens --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IncidentTokenCreated(DomainEvent):
    action = Action.VAULT_TOKEN_CREATED
    accessor: str = ""


@dataclass(frozen=True, kw_only=True)
class IncidentTokensRevoked(DomainEvent):
    action = Action.VAULT_TOKENS_REVOKED
    accessors: tuple[str, ...] = ()
    confirmed_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class IncidentTokensRevocationFailed(DomainEvent):
    action = Action.VAULT_TOKENS_REVOCATION_FAILED
    accessors: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class OrphanRevoked(DomainEvent):
    """A Vault token or lease nobody had on record, found and revoked by reconciliation."""

    action = Action.VAULT_ORPHAN_REVOKED
    accessor: str | None = None
    lease_id: str | None = None
    confirmed_at: datetime | None = None


EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    IncidentOpened,
    IncidentChannelCreated,
    CommanderChanged,
    IncidentClosed,
    RequestFiled,
    DecisionRecorded,
    RequestApproved,
    AutoApproved,
    GroupLookupFailed,
    RequestDenied,
    RequestCancelled,
    RequestTimedOut,
    ApproversReminded,
    RequestFailed,
    AccessEnded,
    ExpiryWarned,
    BreakGlassUsed,
    BreakGlassConfirmed,
    ExtensionAsked,
    ExtensionDecided,
    ExtensionApproved,
    ExtensionDenied,
    ExtensionApplied,
    ExtensionFailed,
    IssueStarted,
    Issued,
    Delivered,
    IssueFailed,
    RevocationRequested,
    RevocationConfirmed,
    RevocationFailed,
    IncidentTokenCreated,
    IncidentTokensRevoked,
    IncidentTokensRevocationFailed,
    OrphanRevoked,
)

_BY_ACTION: Mapping[str, type[DomainEvent]] = {
    **{event_type.action.value: event_type for event_type in EVENT_TYPES},
    Action.REQUEST_EXPIRED.value: AccessEnded,
}


def from_entry(entry: AuditEntry) -> DomainEvent:
    """The typed event a stored entry records. Unknown keys are ignored, missing ones take
    their defaults: entries from every version of Gatehouse read back."""
    event_type = _BY_ACTION.get(entry.action)
    if event_type is None:
        raise ValueError(f"unknown audit action {entry.action!r}")
    return event_type.decode(entry)


def from_entry_if_known(entry: AuditEntry) -> DomainEvent | None:
    """`from_entry`, or None for an action no event class records: a reader that walks the
    whole chain skips what it cannot type instead of failing on it."""
    event_type = _BY_ACTION.get(entry.action)
    return None if event_type is None else event_type.decode(entry)


# --- encoding -----------------------------------------------------------------------------


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    if isinstance(value, StrEnum):
        return value.value
    return value


_HINTS: dict[type[DomainEvent], dict[str, Any]] = {}


def _hints(event_type: type[DomainEvent]) -> dict[str, Any]:
    if event_type not in _HINTS:
        _HINTS[event_type] = typing.get_type_hints(event_type)
    return _HINTS[event_type]


def _decode(hint: Any, value: object) -> object:
    if value is None:
        return None
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if datetime in options and isinstance(value, str):
        return datetime.fromisoformat(value)
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        return tuple(value)
    for option in options:
        if isinstance(option, type) and issubclass(option, StrEnum) and isinstance(value, str):
            return option(value)
    return value
