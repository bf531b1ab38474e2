"""The tamper-evident audit trail: events sealed into one hash chain.

Each event's hash is `sha256(prev_hash ‖ canonical JSON of the event)`, where the canonical JSON
holds everything but the sequence number and the hashes. Order is fixed by the links alone: moving,
removing or slipping in an event breaks a link that `verify_chain` finds and names.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring as _encode_string
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.domain.events import DomainEvent

GENESIS_HASH = "0" * 64


class Action(StrEnum):
    INCIDENT_OPENED = "incident.opened"
    COMMANDER_CHANGED = "incident.commander_changed"
    INCIDENT_CLOSED = "incident.closed"
    INCIDENT_CHANNEL_CREATED = "incident.channel_created"
    REQUEST_FILED = "request.filed"
    REQUEST_DECIDED = "request.decided"
    REQUEST_APPROVED = "request.approved"
    REQUEST_AUTO_APPROVED = "request.auto_approved"
    GROUP_LOOKUP_FAILED = "request.group_lookup_failed"
    REQUEST_DENIED = "request.denied"
    REQUEST_CANCELLED = "request.cancelled"
    REQUEST_TIMED_OUT = "request.timed_out"
    REQUEST_REMINDED = "request.reminded"
    REQUEST_FAILED = "request.failed"
    REQUEST_EXPIRED = "request.expired"
    REQUEST_REVOKED = "request.revoked"
    EXPIRY_WARNED = "request.expiry_warned"
    BREAK_GLASS_USED = "request.break_glass_used"
    BREAK_GLASS_REVIEWED = "request.break_glass_reviewed"
    EXTENSION_REQUESTED = "extension.requested"
    EXTENSION_DECIDED = "extension.decided"
    EXTENSION_APPROVED = "extension.approved"
    EXTENSION_DENIED = "extension.denied"
    EXTENSION_APPLIED = "extension.applied"
    EXTENSION_FAILED = "extension.failed"
    GRANT_ISSUING = "grant.issuing"
    GRANT_ISSUED = "grant.issued"
    GRANT_DELIVERED = "grant.delivered"
    GRANT_ISSUE_FAILED = "grant.issue_failed"
    GRANT_REVOCATION_REQUESTED = "grant.revocation_requested"
    GRANT_REVOKED = "grant.revoked"
    GRANT_REVOCATION_FAILED = "grant.revocation_failed"
    VAULT_TOKEN_CREATED = "vault.incident_token_created"  # noqa: S105 - an event name
    VAULT_TOKENS_REVOKED = "vault.incident_tokens_revoked"
    VAULT_TOKENS_REVOCATION_FAILED = "vault.incident_tokens_revocation_failed"
    VAULT_ORPHAN_REVOKED = "vault.orphan_revoked"


def utc_iso(moment: datetime) -> str:
    """One textual form per instant, so the same event always hashes the same."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_event(
    *,
    action: str,
    actor: str | None,
    at: str,
    data_json: str,
    incident_id: str | None,
    request_id: str | None,
) -> bytes:
    """The canonical JSON of an event, with `data` already in canonical form.

    Equal to `canonical_json` of the whole event (keys sorted, no spaces); assembled by hand so
    the verifier can hash stored rows without parsing and re-serializing every `data` column.
    """
    return (
        f'{{"action":{_text(action)},"actor":{_text(actor)},"at":{_text(at)},'
        f'"data":{data_json},"incident_id":{_text(incident_id)},'
        f'"request_id":{_text(request_id)}}}'
    ).encode()


def _text(value: str | None) -> str:
    return "null" if value is None else _encode_string(value)


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """What happened, by whom, when: the part of an event that the hash covers."""

    action: str
    at: datetime
    actor: str | None = None
    incident_id: str | None = None
    request_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def canonical(self) -> bytes:
        return canonical_event(
            action=self.action,
            actor=self.actor,
            at=utc_iso(self.at),
            data_json=canonical_json(self.data).decode("utf-8"),
            incident_id=self.incident_id,
            request_id=self.request_id,
        )


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str

    def canonical(self) -> bytes:
        return self.entry.canonical()

    @property
    def typed(self) -> "DomainEvent":
        """The typed event this stored one records (`bot.domain.events.from_entry`)."""
        # Imported here: the events module builds on this one.
        from bot.domain.events import from_entry

        return from_entry(self.entry)


@dataclass(frozen=True, slots=True)
class ChainLink:
    """The part of a stored event that verification needs: position, links, hashed bytes."""

    seq: int
    prev_hash: str
    hash: str
    body: bytes

    def canonical(self) -> bytes:
        return self.body


class Linked(Protocol):
    """Anything verify_chain can walk: an AuditEvent, or a ChainLink read from storage."""

    @property
    def seq(self) -> int: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...
    def canonical(self) -> bytes: ...


def seal(entry: AuditEntry, *, seq: int, prev_hash: str) -> AuditEvent:
    return AuditEvent(seq, entry, prev_hash, chain_hash(prev_hash, entry.canonical()))


def next_in_chain(entry: AuditEntry, head: AuditEvent | None) -> AuditEvent:
    """Seal `entry` right after `head` (the chain's last event, None when empty)."""
    if head is None:
        return seal(entry, seq=1, prev_hash=GENESIS_HASH)
    return seal(entry, seq=head.seq + 1, prev_hash=head.hash)


class ChainProblem(StrEnum):
    CHANGED = "changed"
    MISSING = "missing"
    REORDERED = "reordered"
    INSERTED = "inserted"


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: ChainProblem | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


ChainRow = tuple[int, str, str, bytes]
"""One stored event as verification reads it: (seq, prev_hash, hash, canonical bytes)."""


def verify_chain(
    events: Iterable[Linked], *, anchors: Mapping[int, str] | None = None
) -> ChainReport:
    """Walk events in sequence order; report the first one that breaks the chain, and how.

    `anchors` maps sequence numbers to hashes witnessed elsewhere (a close summary in Slack, a
    signed checkpoint): a missing or different anchored event means the tail was cut or rewritten.
    """
    rows = ((event.seq, event.prev_hash, event.hash, event.canonical()) for event in events)
    return verify_rows(rows, anchors=anchors)


def verify_rows(
    rows: Iterable[ChainRow],
    *,
    anchors: Mapping[int, str] | None = None,
    recanonical: Callable[[int], bytes] | None = None,
) -> ChainReport:
    """`verify_chain` over plain rows, at close to the speed of hashing them.

    A chain that checks out costs one sha256, three comparisons and a dictionary lookup per
    event, and no object per event: the first row that fails is handed, with the rest of the
    stream, to the slower walk that names what is wrong. `recanonical(seq)` is asked for an
    event's canonical bytes again when the ones read do not hash to its stored hash, so bytes
    assembled by a quicker route (the database) never make an intact event look changed.
    """
    witnessed = dict(anchors or {})
    stream = iter(rows)
    seq, head_hash, previous_hash = 0, GENESIS_HASH, GENESIS_HASH
    sha256 = hashlib.sha256
    for row_seq, prev_hash, row_hash, body in stream:
        hashes = sha256(prev_hash.encode("ascii") + body).hexdigest() == row_hash
        if not hashes and recanonical is not None:
            body = recanonical(row_seq)
            hashes = sha256(prev_hash.encode("ascii") + body).hexdigest() == row_hash
        if not hashes or row_seq != seq + 1 or prev_hash != head_hash:
            event = ChainLink(row_seq, prev_hash, row_hash, body)
            rest = _Peekable(ChainLink(*later) for later in stream)
            found = _link_problem(event, _Head(seq, head_hash, previous_hash), rest)
            if found is None:  # unreachable: one of the three checks above failed
                raise AssertionError(f"event {row_seq} failed a check the walk passed")
            return ChainReport(seq, seq, head_hash, *found)
        if witnessed.get(row_seq, row_hash) != row_hash:
            detail = f"event {row_seq} differs from the hash witnessed for it"
            return ChainReport(seq, seq, head_hash, row_seq, ChainProblem.CHANGED, detail)
        seq, head_hash, previous_hash = row_seq, row_hash, head_hash
    beyond = [anchored for anchored in witnessed if anchored > seq]
    if beyond:
        return ChainReport(
            seq,
            seq,
            head_hash,
            seq + 1,
            ChainProblem.MISSING,
            f"the chain ends at event {seq}, but event {max(beyond)} was witnessed",
        )
    return ChainReport(seq, seq, head_hash)


@dataclass(frozen=True)
class _Head:
    """The last event that checked out, and the hash before it."""

    seq: int = 0
    hash: str = GENESIS_HASH
    previous_hash: str = GENESIS_HASH


def _link_problem(
    event: Linked, head: _Head, stream: "_Peekable"
) -> tuple[int, ChainProblem, str] | None:
    expected_seq = head.seq + 1
    if event.seq > expected_seq:
        gap = (
            f"event {expected_seq} is"
            if event.seq == expected_seq + 1
            else f"events {expected_seq} to {event.seq - 1} are"
        )
        return expected_seq, ChainProblem.MISSING, f"{gap} missing from the sequence"
    if event.seq < expected_seq:
        return event.seq, ChainProblem.INSERTED, f"sequence number {event.seq} appears twice"
    if chain_hash(event.prev_hash, event.canonical()) != event.hash:
        following = stream.peek()
        if following is not None and following.prev_hash == head.hash:
            return (
                event.seq,
                ChainProblem.INSERTED,
                f"event {event.seq} is not part of the chain: event {following.seq} links "
                f"past it to event {head.seq}",
            )
        return event.seq, ChainProblem.CHANGED, "its content no longer matches its hash"
    if event.prev_hash == head.hash:
        return None
    if head.seq and event.prev_hash == head.previous_hash:
        return (
            head.seq,
            ChainProblem.INSERTED,
            f"event {head.seq} is not part of the chain: event {event.seq} links past it "
            f"to event {head.seq - 1}",
        )
    if any(later.hash == event.prev_hash for later in stream):
        return (
            event.seq,
            ChainProblem.REORDERED,
            f"event {event.seq} links to an event stored after it",
        )
    return (
        event.seq,
        ChainProblem.MISSING,
        f"event {event.seq} links to an event that is not there: the event before it "
        f"was removed, or event {head.seq} was altered and re-hashed",
    )


class _Peekable(Iterator[Linked]):
    def __init__(self, inner: Iterator[Linked]) -> None:
        self._inner = inner
        self._buffer: list[Linked] = []

    def __next__(self) -> Linked:
        if self._buffer:
            return self._buffer.pop()
        return next(self._inner)

    def peek(self) -> Linked | None:
        if not self._buffer:
            following = next(self._inner, None)
            if following is None:
                return None
            self._buffer.append(following)
        return self._buffer[0]
