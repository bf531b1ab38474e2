"""In-memory stand-ins for the store and the credential broker, for domain and service tests."""

import copy
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from bot.domain.access import AccessRequest, Decision, RequestState
from bot.domain.audit import AuditEvent, ChainLink, ChainRow, next_in_chain
from bot.domain.checkpoints import Checkpoint
from bot.domain.errors import (
    AlreadyDone,
    ChannelNameTaken,
    ChatError,
    ChatUnavailable,
    CredentialError,
    CredentialUnavailable,
    OnCallUnavailable,
)
from bot.domain.events import DomainEvent
from bot.domain.export import Backlog, SinkCursor
from bot.domain.extension import ExtensionState
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import Incident
from bot.domain.oncall import OnCallShift
from bot.domain.ports import (
    AccessEnd,
    Blocks,
    ChatGateway,
    CredentialBroker,
    Directory,
    IncidentTokenLedger,
    IssuedCredential,
    OnCall,
    PrivateMessage,
    UnitOfWork,
    UnitOfWorkFactory,
    UserGroupMembers,
)
from bot.domain.rules import DynamicGroup, GroupSource, ResourceRule
from bot.store.claims import Claim, LocalClaims

T = TypeVar("T")


@dataclass
class MemoryState:
    incidents: dict[str, Incident] = field(default_factory=dict)
    requests: dict[str, AccessRequest] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    events: list[AuditEvent] = field(default_factory=list)
    vault_tokens: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    sink_cursors: dict[str, SinkCursor] = field(default_factory=dict)
    request_cards: dict[str, str] = field(default_factory=dict)
    incident_cards: dict[str, str] = field(default_factory=dict)
    private_messages: dict[tuple[str, str, str], PrivateMessage] = field(default_factory=dict)


class MemoryCards:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def of_request(self, request_id: str) -> str | None:
        return self._state.request_cards.get(request_id)

    def of_incident(self, incident_id: str) -> str | None:
        return self._state.incident_cards.get(incident_id)

    def attach_to_request(self, request_id: str, ts: str) -> None:
        self._state.request_cards[request_id] = ts

    def attach_to_incident(self, incident_id: str, ts: str) -> None:
        self._state.incident_cards[incident_id] = ts

    def private_messages(self, request_id: str) -> Sequence[PrivateMessage]:
        return [
            message
            for key, message in sorted(self._state.private_messages.items())
            if key[0] == request_id
        ]

    def keep_private_message(self, message: PrivateMessage) -> None:
        key = (message.request_id, message.kind, message.user_id)
        self._state.private_messages[key] = message


class MemoryIncidents:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def add(self, incident: Incident) -> None:
        self._state.incidents[incident.id] = copy.deepcopy(incident)

    def get(self, incident_id: str, *, for_update: bool = False) -> Incident | None:
        return copy.deepcopy(self._state.incidents.get(incident_id))

    def hold(self, incident_id: str) -> Incident | None:
        return self.get(incident_id)

    def get_by_channel(self, channel_id: str, *, for_update: bool = False) -> Incident | None:
        found = [i for i in self._state.incidents.values() if i.channel_id == channel_id]
        return copy.deepcopy(found[0]) if found and channel_id else None

    def save(self, incident: Incident) -> None:
        self._state.incidents[incident.id] = copy.deepcopy(incident)

    def list_open(self) -> Sequence[Incident]:
        return [copy.deepcopy(i) for i in self._state.incidents.values() if i.is_open]

    def list_closing(self, limit: int, *, archive_closed_before: datetime) -> Sequence[Incident]:
        found = [
            copy.deepcopy(i)
            for i in self._state.incidents.values()
            if i.summary_pending
            or (
                i.archive_pending
                and i.closed_at is not None
                and i.closed_at <= archive_closed_before
            )
        ]
        return found[:limit]

    def list_unfinished_opens(self, opened_before: datetime, limit: int) -> Sequence[Incident]:
        found = [
            copy.deepcopy(i)
            for i in sorted(self._state.incidents.values(), key=lambda i: (i.opened_at, i.id))
            if i.is_open
            and (not i.has_channel or i.id not in self._state.incident_cards)
            and i.opened_at < opened_before
        ]
        return found[:limit]


class MemoryRequests:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def add(self, request: AccessRequest) -> None:
        self._state.requests[request.id] = copy.deepcopy(request)

    def get(
        self, request_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> AccessRequest | None:
        return copy.deepcopy(self._state.requests.get(request_id))

    def save(self, request: AccessRequest) -> None:
        stored = self._state.requests[request.id]
        saved = copy.deepcopy(request)
        saved.decisions = stored.decisions  # decisions are written by add_decision only
        kept = {e.id: e.decisions for e in stored.extensions}
        for extension in saved.extensions:
            extension.decisions = kept.get(extension.id, [])
        self._state.requests[request.id] = saved

    def add_extension_decision(self, extension_id: str, decision: Decision) -> None:
        stored = self._state.requests[decision.request_id]
        extension = next(e for e in stored.extensions if e.id == extension_id)
        if any(d.approver_id == decision.approver_id for d in extension.decisions):
            raise AlreadyDone(f"You already decided extension {extension_id}.")
        extension.decisions.append(decision)

    def list_with_open_extensions(self, state: ExtensionState, limit: int) -> Sequence[str]:
        found = [
            r.id
            for r in self._state.requests.values()
            if any(e.state is state for e in r.extensions)
        ]
        return found[:limit]

    def add_decision(self, decision: Decision) -> None:
        stored = self._state.requests[decision.request_id]
        if any(d.approver_id == decision.approver_id for d in stored.decisions):
            raise AlreadyDone(f"You already decided request {decision.request_id}.")
        stored.decisions.append(decision)

    def list_for_incident(
        self,
        incident_id: str,
        *,
        states: Sequence[RequestState] | None = None,
        for_update: bool = False,
    ) -> Sequence[AccessRequest]:
        return [
            copy.deepcopy(r)
            for r in self._state.requests.values()
            if r.incident_id == incident_id and (states is None or r.state in states)
        ]

    def list_for_requester(
        self, requester_id: str, *, states: Sequence[RequestState]
    ) -> Sequence[AccessRequest]:
        return [
            copy.deepcopy(r)
            for r in self._state.requests.values()
            if r.requester_id == requester_id and r.state in states
        ]

    def list_pending_for_approver(self, approver_id: str) -> Sequence[AccessRequest]:
        return [
            copy.deepcopy(r)
            for r in self._state.requests.values()
            if r.awaits_decision_from(approver_id)
        ]

    def list_due_pending(self, older_than: datetime, limit: int) -> Sequence[AccessRequest]:
        found = [
            copy.deepcopy(r)
            for r in self._state.requests.values()
            if r.state is RequestState.PENDING and r.requested_at <= older_than
        ]
        return found[:limit]

    def list_due_reminders(self, older_than: datetime, limit: int) -> Sequence[AccessRequest]:
        due = self.list_due_pending(older_than, len(self._state.requests))
        return [r for r in due if r.reminded_at is None][:limit]

    def list_due_issue_retries(
        self, now: datetime, *, approved_before: datetime, limit: int
    ) -> Sequence[str]:
        due: list[tuple[datetime, str]] = []
        for request in self._state.requests.values():
            if request.state is not RequestState.APPROVED:
                continue
            attempts = [g for g in self._state.grants.values() if g.request_id == request.id]
            approved_at = request.state_changed_at or request.requested_at
            if not attempts:
                if approved_at <= approved_before:
                    due.append((approved_at, request.id))
            elif all(g.status is GrantStatus.FAILED for g in attempts):
                retry_at = max((g.retry_at for g in attempts if g.retry_at), default=None)
                if retry_at is not None and retry_at <= now:
                    due.append((retry_at, request.id))
        return [request_id for _, request_id in sorted(due)][:limit]

    def list_in_state(self, state: RequestState, limit: int) -> Sequence[AccessRequest]:
        found = [copy.deepcopy(r) for r in self._state.requests.values() if r.state is state]
        return found[:limit]

    def list_due_expiry_warnings(
        self, now: datetime, before: timedelta, limit: int
    ) -> Sequence[str]:
        due = sorted(
            (r.ends_at, r.id)
            for r in self._state.requests.values()
            if r.state is RequestState.ACTIVE
            and r.ends_at is not None
            and now < r.ends_at <= now + before
            and r.expiry_warned_for != r.ends_at
        )
        return [request_id for _, request_id in due][:limit]

    def list_awaiting_delivery(self, limit: int) -> Sequence[AccessRequest]:
        found = [
            copy.deepcopy(r)
            for r in self._state.requests.values()
            if r.awaiting_delivery and r.state is RequestState.ACTIVE
        ]
        return found[:limit]


class MemoryVaultTokens:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def add(self, *, incident_id: str, accessor: str, now: datetime) -> None:
        self._state.vault_tokens[accessor] = (incident_id, None)

    def list_unrevoked(self, incident_id: str | None = None) -> Sequence[tuple[str, str]]:
        return [
            (owner, accessor)
            for accessor, (owner, revoked_at) in self._state.vault_tokens.items()
            if revoked_at is None and incident_id in (None, owner)
        ]

    def list_closed_incidents_with_unrevoked(self, limit: int) -> Sequence[str]:
        closed = [
            owner
            for owner, _ in self.list_unrevoked()
            if owner in self._state.incidents and not self._state.incidents[owner].is_open
        ]
        return list(dict.fromkeys(closed))[:limit]

    def mark_revoked(self, accessors: Sequence[str], *, at: datetime) -> None:
        for accessor in accessors:
            if accessor in self._state.vault_tokens:
                owner, _ = self._state.vault_tokens[accessor]
                self._state.vault_tokens[accessor] = (owner, at)


class MemoryCheckpoints:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def add(self, checkpoint: Checkpoint) -> None:
        self._state.checkpoints.append(checkpoint)

    def last(self) -> Checkpoint | None:
        return self._state.checkpoints[-1] if self._state.checkpoints else None

    def all(self) -> Iterator[Checkpoint]:
        yield from list(self._state.checkpoints)

    def after(self, checkpoint_id: int, limit: int) -> Sequence[tuple[int, Checkpoint]]:
        numbered = list(enumerate(self._state.checkpoints, start=1))
        return numbered[checkpoint_id : checkpoint_id + limit]


class MemorySinkCursors:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def lock(self, sink: str, *, skip_locked: bool = False) -> SinkCursor | None:
        return self._state.sink_cursors.setdefault(sink, SinkCursor(sink))

    def add_at_head(self, sink: str) -> None:
        head = max((e.seq for e in self._state.events), default=0)
        self._state.sink_cursors.setdefault(sink, SinkCursor(sink, event_seq=head))

    def save(self, cursor: SinkCursor) -> None:
        self._state.sink_cursors[cursor.sink] = cursor

    def backlog(self, sink: str) -> Backlog:
        cursor = self._state.sink_cursors.get(sink, SinkCursor(sink))
        waiting = [e.entry.at for e in self._state.events if e.seq > cursor.event_seq]
        waiting += [c.at for c in self._state.checkpoints[cursor.checkpoint_id :]]
        return Backlog(len(waiting), min(waiting, default=None))


class MemoryGrants:
    def __init__(
        self, state: MemoryState, claims_held_here: Callable[[], frozenset[str]] = frozenset
    ) -> None:
        self._state = state
        self._claims_held_here = claims_held_here

    def add(self, grant: Grant) -> None:
        if self.get_for_request(grant.request_id) is not None:
            raise AlreadyDone(f"Request {grant.request_id} already has a credential.")
        self._state.grants[grant.id] = copy.deepcopy(grant)

    def get(self, grant_id: str, *, for_update: bool = False) -> Grant | None:
        return copy.deepcopy(self._state.grants.get(grant_id))

    def get_for_request(self, request_id: str, *, for_update: bool = False) -> Grant | None:
        found = [g for g in self.list_for_request(request_id) if g.status is not GrantStatus.FAILED]
        return found[0] if found else None

    def list_due(self, now: datetime, limit: int) -> Sequence[AccessEnd]:
        return self.list_active_ending(now, limit)

    def list_due_revocations(self, now: datetime, limit: int) -> Sequence[Grant]:
        due = [copy.deepcopy(g) for g in self._state.grants.values() if g.revocation_due(now)]
        return sorted(due, key=lambda g: (g.revoke_retry_at or g.revoke_requested_at or now, g.id))[
            :limit
        ]

    def list_by_status(self, statuses: Sequence[GrantStatus], limit: int) -> Sequence[Grant]:
        found = [copy.deepcopy(g) for g in self._state.grants.values() if g.status in statuses]
        return found[:limit]

    def list_unclaimed_issuing(self, claim_prefix: str, limit: int) -> Sequence[Grant]:
        held = self._claims_held_here()
        found = [
            copy.deepcopy(g)
            for g in self._state.grants.values()
            if g.status is GrantStatus.ISSUING and claim_prefix + g.request_id.upper() not in held
        ]
        return sorted(found, key=lambda g: (g.created_at, g.id))[:limit]

    def count_in(self, statuses: Sequence[GrantStatus], *, resource: str | None = None) -> int:
        return sum(
            1
            for g in self._state.grants.values()
            if g.status in statuses and resource in (None, g.resource)
        )

    def list_active_ending(self, before: datetime, limit: int) -> Sequence[AccessEnd]:
        """As the store: ACTIVE grants, by their request's end (the one record of it)."""
        found = []
        for grant in self._state.grants.values():
            request = self._state.requests.get(grant.request_id)
            if grant.status is not GrantStatus.ACTIVE or request is None:
                continue
            ends_at = request.ends_at
            if request.state is RequestState.ACTIVE and ends_at is not None and ends_at <= before:
                found.append(AccessEnd(grant.request_id, ends_at))
        return sorted(found, key=lambda ending: ending.ends_at)[:limit]

    def list_for_request(self, request_id: str) -> Sequence[Grant]:
        return [copy.deepcopy(g) for g in self._state.grants.values() if g.request_id == request_id]

    def save(self, grant: Grant) -> None:
        self._state.grants[grant.id] = copy.deepcopy(grant)

    def list_for_incident(
        self,
        incident_id: str,
        *,
        statuses: Sequence[GrantStatus] | None = None,
        ids: Sequence[str] | None = None,
        for_update: bool = False,
    ) -> Sequence[Grant]:
        return [
            copy.deepcopy(g)
            for g in self._state.grants.values()
            if g.incident_id == incident_id
            and (statuses is None or g.status in statuses)
            and (ids is None or g.id in ids)
        ]


class MemoryAudit:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def append(self, event: DomainEvent) -> AuditEvent:
        sealed = next_in_chain(event.to_entry(), self.head())
        self._state.events.append(sealed)
        return sealed

    def events(
        self, *, incident_id: str | None = None, after_seq: int = 0, limit: int | None = None
    ) -> Iterator[AuditEvent]:
        found = [
            event
            for event in self._state.events
            if event.seq > after_seq and incident_id in (None, event.entry.incident_id)
        ]
        yield from found[:limit]

    def chain_links(self, *, after_seq: int = 0) -> Iterator[ChainLink]:
        for row in self.chain_rows(after_seq=after_seq):
            yield ChainLink(*row)

    def chain_rows(self, *, after_seq: int = 0) -> Iterator[ChainRow]:
        for event in self.events(after_seq=after_seq):
            yield event.seq, event.prev_hash, event.hash, event.canonical()

    def canonical(self, seq: int) -> bytes:
        return next(event.canonical() for event in self._state.events if event.seq == seq)

    def head(self) -> AuditEvent | None:
        return self._state.events[-1] if self._state.events else None


class MemoryUnitOfWork:
    """Works on a private copy of the state; commit swaps it in. One writer at a time."""

    _lock = threading.RLock()
    incidents: MemoryIncidents
    requests: MemoryRequests
    grants: MemoryGrants
    audit: MemoryAudit
    vault_tokens: MemoryVaultTokens
    checkpoints: MemoryCheckpoints
    sink_cursors: MemorySinkCursors
    cards: MemoryCards

    def __init__(self, store: "MemoryStore") -> None:
        self._store = store

    def __enter__(self) -> Self:
        self._lock.acquire()
        self._working = copy.deepcopy(self._store.state)
        self.incidents = MemoryIncidents(self._working)
        self.requests = MemoryRequests(self._working)
        self.grants = MemoryGrants(self._working, self._store.claims.held_here)
        self.audit = MemoryAudit(self._working)
        self.vault_tokens = MemoryVaultTokens(self._working)
        self.checkpoints = MemoryCheckpoints(self._working)
        self.sink_cursors = MemorySinkCursors(self._working)
        self.cards = MemoryCards(self._working)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()

    def commit(self) -> None:
        self._store.state = self._working
        self._working = copy.deepcopy(self._working)
        self._store.commits += 1

    def rollback(self) -> None:
        self._working = copy.deepcopy(self._store.state)


class MemoryStore:
    """A unit-of-work factory over one in-memory state."""

    def __init__(self) -> None:
        self.state = MemoryState()
        self.commits = 0
        self.claims = LocalClaims()

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def claim(self, key: str, *, wait: bool = False) -> AbstractContextManager[Claim]:
        return self.claims.hold(key, wait=wait)

    def run(self, body: Callable[[UnitOfWork], T]) -> T:
        """One writer at a time here: nothing ever deadlocks, so the body runs once."""
        with self() as tx:
            result = body(tx)
            tx.commit()
            return result

    def state_incident_by_channel(self, channel_id: str) -> str:
        return next(i.id for i in self.state.incidents.values() if i.channel_id == channel_id)


class FakeBroker:
    """Issues fake credentials and remembers what is live; can be told to fail.

    Like the Vault broker, it keeps one incident token per incident and records its accessor
    in its `ledger` before using it; revoking an incident token ends every credential issued
    under it, as Vault ends a token's children and their leases.
    """

    def __init__(self, ledger: IncidentTokenLedger | None = None) -> None:
        self.live: dict[str, datetime] = {}
        self.issued: list[str] = []
        self.revoked: list[str] = []  # grant ids, once per revoke call
        self.incident_tokens: dict[str, str] = {}
        self.revoked_incident_tokens: list[str] = []
        self.confirmed: list[str] = []  # grant ids, once per confirm_gone call
        self.parent_of: dict[str, str] = {}  # lease id -> the incident token it was issued under
        self.ledger = ledger
        self.fail_issue: CredentialError | None = None
        self.fail_revoke = False
        self.fail_renew: CredentialError | None = None
        self.renew_cap: datetime | None = None  # Vault's explicit max TTL, when set
        self.renewed: list[tuple[str, datetime]] = []
        self._counter = 0
        self._lock = threading.Lock()

    def issue(
        self, *, grant: Grant, resource: ResourceRule, until: datetime, now: datetime
    ) -> IssuedCredential:
        if self.fail_issue is not None:
            raise self.fail_issue
        with self._lock:
            self._counter += 1
            number = self._counter
            if grant.incident_id not in self.incident_tokens:
                accessor = f"incident-accessor-{number}"
                if self.ledger is not None:
                    self.ledger.record(grant.incident_id, accessor)
                self.incident_tokens[grant.incident_id] = accessor
        lease_id = f"{resource.vault.path or 'auth/token/create'}/lease{number}"
        self.live[lease_id] = until
        self.parent_of[lease_id] = self.incident_tokens[grant.incident_id]
        self.issued.append(grant.request_id)
        return IssuedCredential(
            lease_id=lease_id,
            token_accessor=f"grant-accessor-{number}",
            expires_at=until,
            wrapping_token=f"hvs.wrap{number}",
            wrapping_accessor=f"wrap-accessor-{number}",
            wrapping_expires_at=now + timedelta(minutes=5),
        )

    def revoke(self, *, grant: Grant) -> datetime:
        if self.fail_revoke:
            raise CredentialUnavailable("Vault is unavailable (connection refused).")
        self.revoked.append(grant.id)
        if grant.lease_id:
            self.live.pop(grant.lease_id, None)
        return grant.revoke_requested_at or grant.created_at

    def renew(self, *, grant: Grant, until: datetime, now: datetime) -> datetime:
        if self.fail_renew is not None:
            raise self.fail_renew
        granted = min(until, self.renew_cap) if self.renew_cap else until
        if grant.lease_id in self.live:
            self.live[grant.lease_id] = granted
        self.renewed.append((grant.id, granted))
        return granted

    def revoke_incident(self, *, incident_id: str, accessors: Sequence[str]) -> datetime:
        if self.fail_revoke:
            raise CredentialUnavailable("Vault is unavailable (connection refused).")
        with self._lock:
            self.revoked_incident_tokens.extend(accessors)
            self.incident_tokens.pop(incident_id, None)
            for lease_id in [lease for lease in self.live if self.parent_of[lease] in accessors]:
                del self.live[lease_id]
        return datetime.now(UTC)

    def confirm_gone(self, *, grant: Grant) -> datetime | None:
        if self.fail_revoke:
            raise CredentialUnavailable("Vault is unavailable (connection refused).")
        with self._lock:
            self.confirmed.append(grant.id)
        if grant.lease_id in self.live:
            return None
        return grant.revoke_requested_at or grant.created_at


def _conforms(store: MemoryStore, broker: FakeBroker) -> tuple[UnitOfWorkFactory, CredentialBroker]:
    """Checked by mypy: the fakes implement the ports."""
    return store, broker


class FakeChat:
    """Records every chat call in order; `taken` names make create_channel say name_taken;
    methods in `failing` raise ChatError (Slack down) and are not recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.taken: set[str] = set()
        self.channels: dict[str, str] = {}
        self.failing: set[str] = set()
        self.refusing: set[str] = set()  # refused for good (a deleted message, say)
        self.markers: dict[tuple[str, str | None, str], str] = {}
        self._ts = 0

    def _record(self, method: str, **args: Any) -> None:
        if method in self.failing:
            raise ChatUnavailable(f"Slack could not be reached for {method}")
        if method in self.refusing:
            raise ChatError(f"Slack refused {method}: message_not_found")
        self.calls.append((method, args))

    def _next_ts(self) -> str:
        self._ts += 1
        return f"1732345678.{self._ts:06d}"

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def create_channel(self, name: str) -> str:
        self._record("conversations.create", name=name)
        if name in self.taken or name in self.channels.values():
            raise ChannelNameTaken("That channel name is taken.")
        channel_id = f"C{len(self.channels) + 1:08d}"
        self.channels[channel_id] = name
        return channel_id

    def invite(self, channel: str, users: Sequence[str]) -> None:
        self._record("conversations.invite", channel=channel, users=list(users))

    def set_topic(self, channel: str, topic: str) -> None:
        self._record("conversations.setTopic", channel=channel, topic=topic)

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        marker: str | None = None,
    ) -> str:
        self._record(
            "chat.postMessage", channel=channel, text=text, blocks=blocks, thread_ts=thread_ts
        )
        ts = self._next_ts()
        if marker is not None:
            self.markers[(channel, thread_ts, marker)] = ts
        return ts

    def find_marked(self, channel: str, marker: str, *, thread_ts: str | None = None) -> str | None:
        self._record("conversations.replies", channel=channel, ts=thread_ts, marker=marker)
        return self.markers.get((channel, thread_ts, marker))

    def update(self, channel: str, ts: str, *, text: str, blocks: Blocks | None = None) -> None:
        self._record("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    def post_ephemeral(
        self, channel: str, user: str, *, text: str, blocks: Blocks | None = None
    ) -> None:
        self._record("chat.postEphemeral", channel=channel, user=user, text=text, blocks=blocks)

    def send_dm(self, user: str, *, text: str, blocks: Blocks | None = None) -> None:
        self._record("dm", user=user, text=text, blocks=blocks)

    def open_dm(self, user: str) -> str:
        """The DM channel with `user` (named after them); not recorded, as `send_dm` opens
        one unrecorded too."""
        if "dm" in self.failing:
            raise ChatUnavailable("Slack could not be reached for conversations.open")
        return f"D{user}"

    def dms_to(self, user: str) -> list[dict[str, Any]]:
        """Messages posted in the DM channel with `user`."""
        return [
            args
            for method, args in self.calls
            if method == "chat.postMessage" and args["channel"] == f"D{user}"
        ]

    def pin(self, channel: str, ts: str) -> None:
        self._record("pins.add", channel=channel, ts=ts)

    def archive(self, channel: str) -> None:
        self._record("conversations.archive", channel=channel)

    def upload_file(
        self, channel: str, *, filename: str, content: str, title: str, comment: str | None = None
    ) -> None:
        self._record("files.upload", channel=channel, filename=filename, content=content)

    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        self._record("views.open", trigger_id=trigger_id, view=view)

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        self._record("views.publish", user=user, view=view)


def _chat_conforms(chat: FakeChat) -> ChatGateway:
    return chat


class FakeDirectory:
    """Slack user groups by id; `failure` makes every lookup raise it."""

    def __init__(self) -> None:
        self.groups: dict[str, UserGroupMembers] = {}
        self.emails: dict[str, str] = {}
        self.failure: ChatError | None = None
        self.lookups = 0
        self.not_people: set[str] = {"USLACKBOT"}  # bots, deactivated, unknown users

    def add_group(self, group_id: str, handle: str, members: Sequence[str]) -> None:
        self.groups[group_id] = UserGroupMembers(group_id, handle, frozenset(members))

    def usergroup(self, group_id: str) -> UserGroupMembers:
        self.lookups += 1
        if self.failure is not None:
            raise self.failure
        if group_id not in self.groups:
            raise ChatError("Slack refused usergroups.users.list: no_such_subteam")
        return self.groups[group_id]

    def email_of(self, user_id: str) -> str | None:
        return self.emails.get(user_id)

    def user_by_email(self, email: str) -> str | None:
        return next((user for user, known in self.emails.items() if known == email), None)

    def is_active_human(self, user_id: str) -> bool:
        if self.failure is not None:
            raise self.failure
        return user_id not in self.not_people


class FakeOnCall:
    """Who is on call, by PagerDuty group ref; `failure` makes every lookup raise it, `delay`
    makes every lookup take that many seconds first (a slow PagerDuty)."""

    def __init__(self) -> None:
        self.shifts: dict[tuple[str, str], OnCallShift] = {}
        self.failure: OnCallUnavailable | None = None
        self.delay = 0.0
        self.lookups = 0

    def put_on_call(self, user_id: str, group: DynamicGroup, *, level: int = 1) -> OnCallShift:
        by_schedule = group.source is GroupSource.PAGERDUTY_SCHEDULE
        shift = OnCallShift(
            user_id=user_id,
            pagerduty_user_id=f"P{user_id[1:]}",
            escalation_policy_id="PEP0001" if by_schedule else group.ref,
            escalation_level=level,
            schedule_id=group.ref if by_schedule else None,
            start=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
            end=datetime(2026, 11, 23, 20, 0, tzinfo=UTC),
        )
        self.shifts[(group.ref, user_id)] = shift
        return shift

    def shift_of(self, user_id: str, group: DynamicGroup) -> OnCallShift | None:
        self.lookups += 1
        time.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        return self.shifts.get((group.ref, user_id))

    def users_on_call(self, group: DynamicGroup) -> frozenset[str]:
        self.lookups += 1
        time.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        return frozenset(user for ref, user in self.shifts if ref == group.ref)


def _lookups_conform(directory: FakeDirectory, oncall: FakeOnCall) -> tuple[Directory, OnCall]:
    return directory, oncall


class MemorySeenRequests:
    """The replay table of one process (bot.store.replays keeps it in the database)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self._lock = threading.Lock()

    def first_sighting(self, key: str, now: datetime) -> bool:
        with self._lock:
            if key in self.keys:
                return False
            self.keys.add(key)
            return True
