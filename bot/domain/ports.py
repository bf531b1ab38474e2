"""Protocols the services depend on; the store and the outbound adapters implement them."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from bot.domain.access import AccessRequest, Decision, RequestState
from bot.domain.audit import AuditEvent, ChainLink, ChainRow
from bot.domain.checkpoints import Checkpoint
from bot.domain.events import DomainEvent
from bot.domain.export import Backlog, ExportRecord, SinkCursor
from bot.domain.extension import ExtensionState
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import Incident
from bot.domain.oncall import OnCallShift
from bot.domain.rules import DynamicGroup, ResourceRule

T = TypeVar("T")


class IncidentRepository(Protocol):
    def add(self, incident: Incident) -> None: ...
    def get(self, incident_id: str, *, for_update: bool = False) -> Incident | None: ...
    def hold(self, incident_id: str) -> Incident | None:
        """Read the incident and hold it against a close until the transaction ends (PostgreSQL:
        FOR KEY SHARE, what the foreign keys of new grants and decisions take anyway)."""
        ...

    def get_by_channel(self, channel_id: str, *, for_update: bool = False) -> Incident | None: ...
    def save(self, incident: Incident) -> None: ...
    def list_open(self) -> Sequence[Incident]: ...
    def list_closing(self, limit: int, *, archive_closed_before: datetime) -> Sequence[Incident]:
        """Closed incidents whose summary or archive is still to be done."""
        ...

    def list_unfinished_opens(self, opened_before: datetime, limit: int) -> Sequence[Incident]:
        """Open incidents opened before `opened_before` whose channel or pinned card is not
        made yet, oldest first."""
        ...


class AccessRequestRepository(Protocol):
    def add(self, request: AccessRequest) -> None: ...
    def get(
        self, request_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> AccessRequest | None:
        """`skip_locked`: lock the row, or return None if another transaction holds it."""
        ...

    def save(self, request: AccessRequest) -> None: ...
    def add_decision(self, decision: Decision) -> None: ...
    def add_extension_decision(self, extension_id: str, decision: Decision) -> None: ...
    def list_with_open_extensions(self, state: ExtensionState, limit: int) -> Sequence[str]:
        """Ids of requests with an extension in `state`, oldest first."""
        ...

    def list_for_incident(
        self,
        incident_id: str,
        *,
        states: Sequence[RequestState] | None = None,
        for_update: bool = False,
    ) -> Sequence[AccessRequest]: ...
    def list_in_state(self, state: RequestState, limit: int) -> Sequence[AccessRequest]: ...
    def list_due_pending(self, older_than: datetime, limit: int) -> Sequence[AccessRequest]:
        """PENDING requests filed at or before `older_than`; SKIP LOCKED on PostgreSQL."""
        ...

    def list_due_reminders(self, older_than: datetime, limit: int) -> Sequence[AccessRequest]:
        """PENDING requests filed at or before `older_than` and not reminded yet, oldest first;
        SKIP LOCKED on PostgreSQL."""
        ...

    def list_due_issue_retries(
        self, now: datetime, *, approved_before: datetime, limit: int
    ) -> Sequence[str]:
        """Ids of APPROVED requests due to be issued (again), soonest due first; SKIP LOCKED
        on PostgreSQL."""
        ...

    def list_for_requester(
        self, requester_id: str, *, states: Sequence[RequestState]
    ) -> Sequence[AccessRequest]: ...
    def list_pending_for_approver(self, approver_id: str) -> Sequence[AccessRequest]:
        """Requests waiting on this user: pending ones, break-glass to review and extensions."""
        ...

    def list_due_expiry_warnings(
        self, now: datetime, before: timedelta, limit: int
    ) -> Sequence[str]:
        """Ids of ACTIVE requests ending within `before` of `now` (and not yet ended) whose
        requester was not warned of that end, soonest first, locked (SKIP LOCKED)."""
        ...

    def list_awaiting_delivery(self, limit: int) -> Sequence[AccessRequest]:
        """ACTIVE requests whose credential was issued but not yet handed over."""
        ...


@dataclass(frozen=True)
class AccessEnd:
    """When one active access ends: its request's `ends_at`, the one record of it."""

    request_id: str
    ends_at: datetime


class GrantRepository(Protocol):
    def add(self, grant: Grant) -> None: ...
    def get(self, grant_id: str, *, for_update: bool = False) -> Grant | None: ...
    def get_for_request(self, request_id: str, *, for_update: bool = False) -> Grant | None:
        """The live grant (not a failed attempt), if any."""
        ...

    def list_for_request(self, request_id: str) -> Sequence[Grant]: ...
    def list_due(self, now: datetime, limit: int) -> Sequence[AccessEnd]:
        """Active access whose end (its request's) has come, soonest first; its grants locked
        with SKIP LOCKED on PostgreSQL."""
        ...

    def list_due_revocations(self, now: datetime, limit: int) -> Sequence[Grant]:
        """REVOKING grants whose revocation is due (never tried, or backoff passed), longest
        due first; SKIP LOCKED on PostgreSQL."""
        ...

    def list_by_status(self, statuses: Sequence[GrantStatus], limit: int) -> Sequence[Grant]:
        """Grants in any of `statuses`; on PostgreSQL locked with SKIP LOCKED for one sweep."""
        ...

    def list_unclaimed_issuing(self, claim_prefix: str, limit: int) -> Sequence[Grant]:
        """ISSUING grants whose claim `claim_prefix` + request id nobody holds (their issuer
        died), oldest first; SKIP LOCKED on PostgreSQL."""
        ...

    def count_in(self, statuses: Sequence[GrantStatus], *, resource: str | None = None) -> int:
        """How many grants are in `statuses` (of `resource`), without locking any."""
        ...

    def list_active_ending(self, before: datetime, limit: int) -> Sequence[AccessEnd]:
        """Active access ending at or before `before`, soonest first; nothing locked."""
        ...

    def save(self, grant: Grant) -> None: ...
    def list_for_incident(
        self,
        incident_id: str,
        *,
        statuses: Sequence[GrantStatus] | None = None,
        ids: Sequence[str] | None = None,
        for_update: bool = False,
    ) -> Sequence[Grant]:
        """The incident's grants (in `statuses`, among `ids`), oldest first; `for_update`
        locks them all in one statement."""
        ...


class VaultTokenRepository(Protocol):
    """Accessors of the per-incident Vault tokens (never the tokens themselves)."""

    def add(self, *, incident_id: str, accessor: str, now: datetime) -> None: ...
    def list_unrevoked(self, incident_id: str | None = None) -> Sequence[tuple[str, str]]: ...
    def list_closed_incidents_with_unrevoked(self, limit: int) -> Sequence[str]:
        """Closed incidents that still have a token not confirmed revoked, oldest token first."""
        ...

    def mark_revoked(self, accessors: Sequence[str], *, at: datetime) -> None: ...


class CheckpointRepository(Protocol):
    def add(self, checkpoint: Checkpoint) -> None: ...
    def last(self) -> Checkpoint | None: ...
    def all(self) -> Iterator[Checkpoint]: ...
    def after(self, checkpoint_id: int, limit: int) -> Sequence[tuple[int, Checkpoint]]:
        """(id, checkpoint) pairs with ids above `checkpoint_id`, in signing order."""
        ...


class SinkCursorRepository(Protocol):
    """How far each audit sink got (bot.domain.export)."""

    def lock(self, sink: str, *, skip_locked: bool = False) -> SinkCursor | None:
        """The sink's cursor, locked for this transaction; a new sink's starts at the first event.

        With `skip_locked`, None when another transaction holds it (SKIP LOCKED on PostgreSQL).
        """
        ...

    def add_at_head(self, sink: str) -> None:
        """A cursor for `sink` at the chain's last event, unless it has one: a follower that
        starts now and leaves what came before it alone."""
        ...

    def save(self, cursor: SinkCursor) -> None: ...
    def backlog(self, sink: str) -> Backlog:
        """What the sink has not received: records after its cursor, and the oldest one's time."""
        ...


@dataclass(frozen=True)
class PrivateMessage:
    """A direct message about a request, kept so it can be redrawn when the request moves on:
    an approver's task or reminder, the requester's credential message."""

    request_id: str
    kind: str  # "task", "reminder", "credential"
    user_id: str
    channel_id: str
    ts: str


class CardRepository(Protocol):
    """Where the chat shows each incident and request (its card's message ts): the chat
    adapter's bookkeeping, kept beside the records rather than in them."""

    def of_request(self, request_id: str) -> str | None: ...
    def of_incident(self, incident_id: str) -> str | None: ...
    def attach_to_request(self, request_id: str, ts: str) -> None: ...
    def attach_to_incident(self, incident_id: str, ts: str) -> None: ...
    def private_messages(self, request_id: str) -> Sequence[PrivateMessage]:
        """Every direct message kept for the request, in the order they were kept."""
        ...

    def keep_private_message(self, message: PrivateMessage) -> None:
        """Keep where a direct message is (one per request, kind and user: the latest)."""
        ...


class AuditLog(Protocol):
    def append(self, event: DomainEvent) -> AuditEvent:
        """Seal `event` (as `event.to_entry()`) onto the chain inside the current transaction."""
        ...

    def events(
        self, *, incident_id: str | None = None, after_seq: int = 0, limit: int | None = None
    ) -> Iterator[AuditEvent]: ...

    def chain_links(self, *, after_seq: int = 0) -> Iterator[ChainLink]:
        """The chain as stored, for verification, in sequence order."""
        ...

    def chain_rows(self, *, after_seq: int = 0) -> Iterator[ChainRow]:
        """The same as plain rows, for `verify_rows`: no object per event."""
        ...

    def canonical(self, seq: int) -> bytes:
        """One stored event's canonical bytes, assembled again from what is stored."""
        ...

    def head(self) -> AuditEvent | None: ...


class UnitOfWork(Protocol):
    """One transaction: every change and its audit events commit together or not at all."""

    @property
    def incidents(self) -> IncidentRepository: ...
    @property
    def requests(self) -> AccessRequestRepository: ...
    @property
    def grants(self) -> GrantRepository: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def vault_tokens(self) -> VaultTokenRepository: ...
    @property
    def checkpoints(self) -> CheckpointRepository: ...
    @property
    def sink_cursors(self) -> SinkCursorRepository: ...
    @property
    def cards(self) -> CardRepository: ...

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class Claim(Protocol):
    """A worker's hold on outside work: true while held."""

    def __bool__(self) -> bool: ...
    def ensure_held(self) -> None:
        """Raise ClaimLost unless the claim is held right now: called before each call out
        (Vault) made under it, so that no work proceeds once its claim is gone."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
    def run(self, body: Callable[[UnitOfWork], T]) -> T:
        """Run `body` in one transaction and commit it; when the database aborts it as a
        deadlock victim or a serialization failure, run the whole body again (a few times,
        after a jittered pause). `body` must only touch the database: no calls out, no
        effects that a second run would repeat."""
        ...

    def claim(self, key: str, *, wait: bool = False) -> AbstractContextManager[Claim]:
        """Hold `key` while the block runs, against every thread and replica; yields a false
        Claim when another worker holds it. A claim dies with its holder, so one that can be
        taken means nobody is doing that work now."""
        ...


class AuditSink(Protocol):
    """Where audit records are exported (a SIEM webhook, Splunk HEC)."""

    @property
    def name(self) -> str:
        """Stable: it keys the sink's cursor in the database."""
        ...

    def send(self, records: Sequence[ExportRecord]) -> None:
        """Deliver `records` in order as one batch, or raise SinkUnavailable (retried with
        backoff) or SinkMisconfigured (retried slowly)."""
        ...


class IncidentTokenLedger(Protocol):
    """Where the credential broker puts each incident token's accessor on record, before the
    token is used: close and reconciliation revoke from this record, so a token this process
    made is revoked even if the process dies holding it."""

    def record(self, incident_id: str, accessor: str) -> None: ...


@dataclass(frozen=True)
class IssuedCredential:
    """What the broker hands back for delivery to the requester.

    `wrapping_token` and `secret` are secrets: they live in memory until delivered, and are
    never stored, logged or audited. Exactly one of them is set, by the resource's delivery.
    """

    lease_id: str | None
    token_accessor: str | None
    expires_at: datetime
    wrapping_token: str | None = field(default=None, repr=False)
    wrapping_accessor: str | None = None
    wrapping_expires_at: datetime | None = None
    secret: Mapping[str, str] | None = field(default=None, repr=False)


class CredentialBroker(Protocol):
    def issue(
        self, *, grant: Grant, resource: ResourceRule, until: datetime, now: datetime
    ) -> IssuedCredential:
        """Issue a credential that Vault itself expires at `until` (`Access.credential_ends_at`)."""
        ...

    def revoke(self, *, grant: Grant) -> datetime:
        """Revoke and confirm with a lookup; returns when Vault confirmed the credential is gone.

        Already gone counts as success. Raises CredentialError when it cannot confirm.
        """
        ...

    def revoke_incident(self, *, incident_id: str, accessors: Sequence[str]) -> datetime:
        """Revoke the incident's tokens side by side (normally one: one request), and with
        them every grant token and lease issued under them; confirm the incident tokens are
        gone. The grants are confirmed afterwards, each on its own (`confirm_gone`)."""
        ...

    def confirm_gone(self, *, grant: Grant) -> datetime | None:
        """Look up (never revoke) the grant's token and lease: when Vault confirmed both are
        gone, or None while it still holds one. Raises CredentialError when it cannot tell.

        Safe to call from many threads at once: the close confirms its grants in parallel.
        """
        ...

    def renew(self, *, grant: Grant, until: datetime, now: datetime) -> datetime:
        """Renew the grant's own credential to `until`; returns the end Vault granted,
        which may be earlier (Vault caps it at the token's maximum)."""
        ...


@dataclass(frozen=True)
class LiveToken:
    """A token Vault holds that Gatehouse made, known by its accessor and metadata."""

    accessor: str
    incident_id: str
    grant_id: str | None  # None for an incident token


class CredentialInventory(Protocol):
    """What Vault holds for us, for reconciliation against our records."""

    def live_tokens(self) -> Sequence[LiveToken]: ...
    def revoke_token(self, *, accessor: str) -> datetime: ...
    def list_leases(self, prefix: str) -> list[str]: ...
    def revoke_lease(self, *, lease_id: str) -> datetime: ...


Blocks = Sequence[Mapping[str, Any]]


class ChatGateway(Protocol):
    """Outbound chat (Slack Web API). Raises ChannelNameTaken, ChatError."""

    def create_channel(self, name: str) -> str: ...
    def invite(self, channel: str, users: Sequence[str]) -> None: ...
    def set_topic(self, channel: str, topic: str) -> None: ...
    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        marker: str | None = None,
    ) -> str:
        """Post a message; `marker` is attached to it (Slack message metadata), unseen by
        people, so that `find_marked` can tell later whether it was posted."""
        ...

    def find_marked(self, channel: str, marker: str, *, thread_ts: str | None = None) -> str | None:
        """The ts of the message this app posted with `marker` in the thread `thread_ts` (or
        among the channel's latest messages), if any: asked after a stop, before posting it
        again."""
        ...

    def update(self, channel: str, ts: str, *, text: str, blocks: Blocks | None = None) -> None: ...
    def post_ephemeral(
        self, channel: str, user: str, *, text: str, blocks: Blocks | None = None
    ) -> None: ...
    def send_dm(self, user: str, *, text: str, blocks: Blocks | None = None) -> None: ...
    def open_dm(self, user: str) -> str:
        """The id of the bot's direct message channel with `user` (opened if need be)."""
        ...

    def pin(self, channel: str, ts: str) -> None: ...
    def archive(self, channel: str) -> None: ...
    def upload_file(
        self, channel: str, *, filename: str, content: str, title: str, comment: str | None = None
    ) -> None: ...
    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None: ...
    def publish_home(self, user: str, view: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class UserGroupMembers:
    id: str
    handle: str  # shown as `@handle`
    members: frozenset[str]


class Directory(Protocol):
    """Who is who in Slack, looked up when a request is filed. Raises ChatError."""

    def usergroup(self, group_id: str) -> UserGroupMembers: ...
    def email_of(self, user_id: str) -> str | None: ...
    def user_by_email(self, email: str) -> str | None: ...
    def is_active_human(self, user_id: str) -> bool:
        """A person who can act: exists, not a bot or app, not deactivated, not Slackbot."""
        ...


class OnCall(Protocol):
    """Who is on call right now (PagerDuty). Raises OnCallUnavailable when it cannot tell."""

    def shift_of(self, user_id: str, group: DynamicGroup) -> OnCallShift | None:
        """The Slack user's current on-call entry in the group's schedule or escalation policy."""
        ...

    def users_on_call(self, group: DynamicGroup) -> frozenset[str]:
        """The Slack users on call in the group now."""
        ...
