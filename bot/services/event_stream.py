"""Following the audit chain: the outbox every effect after a commit reads.

Each handler (the Slack notifier, the Vault effects, the expiry timers) keeps a cursor, the
sequence number of the last event it has dealt with, in `audit_sink_cursors` beside the audit
sinks' own, and runs under a claim of its own (`stream:<name>`) so that of several threads and
replicas exactly one follows it at a time. One `StreamFollower` serves all of them from one
read: a batch of events after the furthest-behind cursor, with what they are about, read in one
transaction; each handler then takes the events past its own cursor. Events are read in
sequence order, which is commit order (the chain's lock is taken last and held to the commit),
so a follower never skips an event that commits after it has read past.

A handler says which of its effects may not be repeated (a message posted); the cursor is saved
right after each of those, so a stop repeats at most idempotent effects (a card drawn again, a
grant found revoked already, a timer armed again) and the one post that may have gone out just
before the stop. That one is "in doubt": a follower taking over from another holder (the cursor
names its last holder), or retrying after a failure that may have happened after the post went
out, tells the handler, which checks before posting again (Slack: the message's metadata).
A handler that cannot reach its outside party raises `EffectUnavailable`: its cursor stays on
that event and it backs off; its later events wait behind it, so order is kept, while the other
handlers go on.
"""

import threading
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from bot.domain.access import AccessRequest
from bot.domain.backoff import retry_wait
from bot.domain.events import DomainEvent, from_entry_if_known
from bot.domain.export import SinkCursor
from bot.domain.grant import Grant
from bot.domain.incident import Incident
from bot.domain.ports import Claim, PrivateMessage, UnitOfWork, UnitOfWorkFactory
from bot.services.common import random_token
from bot.services.crashpoints import crash_point

BATCH = 100
FIRST_RETRY_AFTER = timedelta(seconds=2)
LONGEST_RETRY_WAIT = timedelta(seconds=30)
log = structlog.get_logger(__name__)


class EffectUnavailable(Exception):
    """The outside party could not be reached or asked us to slow down: try again later."""


@dataclass(frozen=True)
class StreamEvent:
    seq: int
    event: DomainEvent


@dataclass(frozen=True)
class Batch:
    """Events after a cursor, with the requests and incidents they are about, as they are now
    (read in the same transaction, so at least as new as the newest event)."""

    events: Sequence[StreamEvent]
    last_seq: int = 0  # the last event read, typed or not
    read: int = 0  # how many were read
    requests: dict[str, AccessRequest] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    cards: dict[str, str] = field(default_factory=dict)  # request id -> its card's ts
    grants: dict[str, Grant] = field(default_factory=dict)  # the grants events name
    # request id -> where its direct messages are (tasks, reminders, the credential message)
    private: dict[str, list[PrivateMessage]] = field(default_factory=dict)

    def request(self, request_id: str | None) -> AccessRequest | None:
        return self.requests.get(request_id) if request_id else None

    def incident(self, incident_id: str | None) -> Incident | None:
        return self.incidents.get(incident_id) if incident_id else None

    def card(self, request_id: str) -> str | None:
        return self.cards.get(request_id)

    def grant(self, grant_id: str | None) -> Grant | None:
        return self.grants.get(grant_id) if grant_id else None


class StreamHandler(Protocol):
    @property
    def name(self) -> str: ...

    def handle(self, item: StreamEvent, batch: Batch, *, in_doubt: bool) -> bool:
        """Carry out `item`'s effects; True when one of them may not be repeated (a message
        posted), so that the cursor is saved at `item` right away. `in_doubt`: such an effect
        may already have happened (its holder stopped before saving): check before doing it."""
        ...


@dataclass
class _Position:
    saved: int = 0  # as stored
    handled: int = 0  # in this process, at least: effects past `saved` were repeatable


class _Lane:
    """One handler as this process follows it: its cursor's name, its progress, its holder."""

    def __init__(self, handler: StreamHandler) -> None:
        self.handler = handler
        self.name = handler.name
        self.running = threading.Lock()
        self.again = threading.Event()
        self.position = _Position()
        self.holder = random_token()  # names this process on the cursor while it holds it
        self.in_doubt = True  # until this process has carried out a non-repeatable effect


class StreamFollower:
    """Runs its handlers over the chain, each at its own cursor: `follow` after a commit, and
    on a timer. One read serves every handler this call holds, so following three handlers
    costs the transactions of one."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        handlers: Sequence[StreamHandler],
        clock: Callable[[], datetime],
        batch: int = BATCH,
    ) -> None:
        self._uow = uow
        self._lanes = [_Lane(handler) for handler in handlers]  # each batch, in this order
        self._clock = clock
        self._batch = batch

    @property
    def names(self) -> list[str]:
        return [lane.name for lane in self._lanes]

    def start_cursors(self) -> None:
        """Give every handler without a cursor one at the chain's head, at start and before
        anything is recorded: what happened before the handler existed was done another way
        (inline, or it is in the grants' own retry queues), and is not done again."""
        with self._uow() as tx:
            for lane in self._lanes:
                tx.sink_cursors.add_at_head(lane.name)
            tx.commit()

    def follow(self, *, waiting_for: Collection[str] = ()) -> int:
        """Handle every event not yet handled, by every handler; returns how many (event,
        handler) pairs. A handler another thread of this process follows is left to it (it
        runs again before it stops), and so is one another replica holds; for the handlers
        named in `waiting_for` the caller waits for that thread and for other replicas instead,
        and returns only when they are caught up (or backing off)."""
        for lane in self._lanes:
            lane.again.set()
        handled = 0
        while True:
            wanted = [lane for lane in self._lanes if lane.again.is_set()]
            if not wanted:
                return handled
            with ExitStack() as held:
                # Taken in one order, whoever waits for which, so no two callers wait on each
                # other.
                mine: list[tuple[_Lane, Claim]] = []
                for lane in wanted:
                    wait = lane.name in waiting_for
                    if not lane.running.acquire(blocking=wait):
                        continue
                    held.callback(lane.running.release)
                    lane.again.clear()
                    claim = held.enter_context(self._uow.claim(f"stream:{lane.name}", wait=wait))
                    if claim:
                        mine.append((lane, claim))
                if not mine:
                    return handled
                handled += self._follow_under_claims(mine)

    def follow_through(self, name: str) -> bool:
        """Follow, waiting for whoever else follows handler `name`, and say whether every event
        recorded before the call is handled by it now: False while its outside party fails
        (the handler backing off returns at once). What must come after all that is recorded
        waits for True, such as a close's summary and the archiving after it, which would
        leave a card never posted, or the answer to a revocation."""
        lane = self._lane(name)
        with self._uow() as tx:
            head = tx.audit.head()
        self.follow(waiting_for=[name])
        if head is None:
            return True
        with self._uow() as tx:
            cursor = tx.sink_cursors.lock(name)
        saved = cursor.event_seq if cursor is not None else 0
        return max(saved, lane.position.handled) >= head.seq

    def _lane(self, name: str) -> _Lane:
        return next(lane for lane in self._lanes if lane.name == name)

    def _follow_under_claims(self, mine: Sequence[tuple[_Lane, Claim]]) -> int:
        handled = 0
        while True:
            for _, claim in mine:
                claim.ensure_held()
            read = self._read([lane for lane, _ in mine])
            if read is None:
                return handled
            batch, ready = read
            for lane, after in ready:
                handled += self._handle(lane, batch, after=after)
            if batch.read < self._batch:
                return handled

    def _read(self, lanes: Sequence[_Lane]) -> tuple[Batch, list[tuple[_Lane, int]]] | None:
        """The next batch for the lanes not backing off, with where each of them stands; None
        when they are all caught up or backing off."""
        now = self._clock()
        with self._uow() as tx:
            ready: list[tuple[_Lane, int]] = []
            taken_over = False
            for lane in lanes:
                cursor = tx.sink_cursors.lock(lane.name)
                if cursor is None or not cursor.ready(now):
                    continue
                if cursor.claimed_by != lane.holder:
                    # Another holder since: its last post may not have been saved. (Nobody
                    # before this one, when the cursor is new: nothing in doubt.)
                    lane.in_doubt = cursor.claimed_by is not None
                    cursor = replace(cursor, claimed_by=lane.holder)
                    tx.sink_cursors.save(cursor)
                    taken_over = True
                    lane.position.handled = 0
                lane.position.saved = cursor.event_seq
                ready.append((lane, max(cursor.event_seq, lane.position.handled)))
            if taken_over:
                tx.commit()
            if not ready:
                return None
            after = min(position for _, position in ready)
            stored = list(tx.audit.events(after_seq=after, limit=self._batch))
            if not stored:
                return None
            # An action this release has no class for (a newer release's) is passed over.
            typed = [(e.seq, from_entry_if_known(e.entry)) for e in stored]
            events = [StreamEvent(seq, event) for seq, event in typed if event is not None]
            batch = _with_subjects(tx, events, last_seq=stored[-1].seq, read=len(stored))
            return batch, ready

    def _handle(self, lane: _Lane, batch: Batch, *, after: int) -> int:
        handled = 0
        for item in batch.events:
            if item.seq <= after:
                continue
            try:
                once = lane.handler.handle(item, batch, in_doubt=lane.in_doubt)
            except EffectUnavailable as unavailable:
                lane.in_doubt = True  # a post that timed out may have gone out all the same
                self._save(lane, lane.position.handled, error=str(unavailable))
                log.warning(
                    "effects paused: the outside party is unavailable",
                    follower=lane.name,
                    seq=item.seq,
                    error=str(unavailable),
                )
                return handled
            except Exception:
                # A bug or an unreadable event must not stop every later effect: logged, and
                # passed (a repeatable effect is redone by the next event on the same item).
                log.exception("effect failed; passed over", follower=lane.name, seq=item.seq)
                once = True
            lane.position.handled = item.seq
            handled += 1
            if once:
                crash_point("notify.posted")
                self._save(lane, item.seq)
                lane.in_doubt = False
        lane.position.handled = max(lane.position.handled, batch.last_seq)
        return handled

    def save_progress(self) -> None:
        """Store how far this process got (repeatable effects included), on the timer: one
        transaction for every handler that moved."""
        moved = [lane for lane in self._lanes if lane.position.handled > lane.position.saved]
        if moved:
            self._save_all([(lane, lane.position.handled) for lane in moved])

    def _save(self, lane: _Lane, seq: int, *, error: str | None = None) -> None:
        self._save_all([(lane, seq)], error=error)

    def _save_all(self, progress: Sequence[tuple[_Lane, int]], *, error: str | None = None) -> None:
        now = self._clock()
        saved: list[tuple[_Lane, SinkCursor]] = []
        with self._uow() as tx:
            for lane, seq in progress:
                cursor = tx.sink_cursors.lock(lane.name)
                if cursor is None:
                    continue
                moved = _moved(cursor, seq, now=now, error=error)
                tx.sink_cursors.save(moved)
                saved.append((lane, moved))
            tx.commit()
        for lane, moved in saved:
            lane.position.saved = moved.event_seq
            lane.position.handled = max(lane.position.handled, moved.event_seq)


def _moved(cursor: SinkCursor, seq: int, *, now: datetime, error: str | None) -> SinkCursor:
    """The cursor at `seq` (never back); after a failure, with its backoff."""
    if error is None:
        return replace(
            cursor,
            event_seq=max(cursor.event_seq, seq),
            attempts=0,
            next_attempt_at=None,
            last_error=None,
            last_delivered_at=now,
        )
    attempts = cursor.attempts + 1
    wait = retry_wait(attempts, first=FIRST_RETRY_AFTER, longest=LONGEST_RETRY_WAIT)
    return replace(
        cursor,
        event_seq=max(cursor.event_seq, seq),
        attempts=attempts,
        next_attempt_at=now + wait,
        last_error=error,
    )


def _with_subjects(
    tx: UnitOfWork, events: Sequence[StreamEvent], *, last_seq: int, read: int
) -> Batch:
    batch = Batch(events, last_seq=last_seq, read=read)
    for item in events:
        request_id, incident_id = item.event.request_id, item.event.incident_id
        if request_id and request_id not in batch.requests:
            request = tx.requests.get(request_id)
            if request is not None:
                batch.requests[request_id] = request
                incident_id = incident_id or request.incident_id
                card_ts = tx.cards.of_request(request_id)
                if card_ts is not None:
                    batch.cards[request_id] = card_ts
                batch.private[request_id] = list(tx.cards.private_messages(request_id))
        if incident_id and incident_id not in batch.incidents:
            incident = tx.incidents.get(incident_id)
            if incident is not None:
                batch.incidents[incident_id] = incident
        grant_id = getattr(item.event, "grant_id", None)
        if isinstance(grant_id, str) and grant_id and grant_id not in batch.grants:
            grant = tx.grants.get(grant_id)
            if grant is not None:
                batch.grants[grant_id] = grant
    return batch
