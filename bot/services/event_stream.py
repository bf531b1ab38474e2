"""Following the audit chain: the outbox every effect after a commit reads.

Each follower (the Slack notifier today) keeps a cursor, the sequence number of the last event
it has dealt with, in `audit_sink_cursors` beside the audit sinks' own, and runs under a claim
of its own so that of several threads and replicas exactly one follows at a time. Events are
read in sequence order, which is commit order (the chain's lock is taken last and held to the
commit), so a follower never skips an event that commits after it has read past.

A handler says which of its effects may not be repeated (a message posted); the cursor is saved
right after each of those, so a stop repeats at most idempotent effects (a card drawn again) and
the one post that may have gone out just before the stop. That one is "in doubt": a follower
taking over from another holder (the cursor names its last holder), or retrying after a failure
that may have happened after the post went out, tells the handler, which checks before posting
again (Slack: the message's metadata).
A handler that cannot reach its outside party raises `EffectUnavailable`: the cursor stays on
that event and the follower backs off; later events wait behind it, so order is kept.
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from bot.domain.access import AccessRequest
from bot.domain.backoff import retry_wait
from bot.domain.events import DomainEvent, from_entry_if_known
from bot.domain.incident import Incident
from bot.domain.ports import UnitOfWork, UnitOfWorkFactory
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

    def request(self, request_id: str | None) -> AccessRequest | None:
        return self.requests.get(request_id) if request_id else None

    def incident(self, incident_id: str | None) -> Incident | None:
        return self.incidents.get(incident_id) if incident_id else None

    def card(self, request_id: str) -> str | None:
        return self.cards.get(request_id)


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


class StreamFollower:
    """Runs one handler over the chain: `follow` after a commit, and on a timer."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        handler: StreamHandler,
        clock: Callable[[], datetime],
        batch: int = BATCH,
    ) -> None:
        self._uow = uow
        self._handler = handler
        self._clock = clock
        self._batch = batch
        self._running = threading.Lock()
        self._again = threading.Event()
        self._position = _Position()
        self._holder = random_token()  # names this follower on the cursor while it holds it
        self._in_doubt = True  # until this process has carried out a non-repeatable effect

    @property
    def name(self) -> str:
        return self._handler.name

    def follow(self, *, wait: bool = False) -> int:
        """Handle every event not yet handled; returns how many. A call while another thread
        of this process follows leaves the work to it (it runs again before it stops); with
        `wait`, the caller waits for that thread and for other replicas, and returns only when
        the stream is caught up (or backing off)."""
        self._again.set()
        handled = 0
        while self._again.is_set():
            if not self._running.acquire(blocking=wait):
                return handled
            try:
                self._again.clear()
                handled += self._follow_under_claim(wait=wait)
            finally:
                self._running.release()
        return handled

    def follow_through(self) -> bool:
        """Follow, waiting for any other follower, and say whether every event recorded before
        the call is handled now: False while the outside party fails (the follower backing off
        returns at once). What must come after all that is recorded waits for True, such as a
        close's summary and the archiving after it, which would leave a card never posted."""
        with self._uow() as tx:
            head = tx.audit.head()
        self.follow(wait=True)
        if head is None:
            return True
        with self._uow() as tx:
            cursor = tx.sink_cursors.lock(self.name)
        saved = cursor.event_seq if cursor is not None else 0
        return max(saved, self._position.handled) >= head.seq

    def _follow_under_claim(self, *, wait: bool) -> int:
        with self._uow.claim(f"stream:{self.name}", wait=wait) as mine:
            if not mine:
                return 0
            handled = 0
            while True:
                mine.ensure_held()
                batch = self._read()
                if batch is None:
                    return handled
                handled += self._handle(batch)
                if batch.read < self._batch:
                    return handled

    def _read(self) -> Batch | None:
        """The next batch, or None when caught up or backing off after a failure."""
        with self._uow() as tx:
            cursor = tx.sink_cursors.lock(self.name)
            if cursor is None or not cursor.ready(self._clock()):
                return None
            if cursor.claimed_by != self._holder:
                # Another holder since: its last post may not have been saved. (Nobody before
                # this one, when the cursor is new: nothing in doubt.)
                self._in_doubt = cursor.claimed_by is not None
                cursor = replace(cursor, claimed_by=self._holder)
                tx.sink_cursors.save(cursor)
                tx.commit()
                self._position.handled = 0
            self._position.saved = cursor.event_seq
            after = max(cursor.event_seq, self._position.handled)
            stored = list(tx.audit.events(after_seq=after, limit=self._batch))
            if not stored:
                return None
            # An action this release has no class for (a newer release's) is passed over.
            typed = [(e.seq, from_entry_if_known(e.entry)) for e in stored]
            events = [StreamEvent(seq, event) for seq, event in typed if event is not None]
            return _with_subjects(tx, events, last_seq=stored[-1].seq, read=len(stored))

    def _handle(self, batch: Batch) -> int:
        handled = 0
        for item in batch.events:
            try:
                once = self._handler.handle(item, batch, in_doubt=self._in_doubt)
            except EffectUnavailable as unavailable:
                self._in_doubt = True  # a post that timed out may have gone out all the same
                self._save(self._position.handled, error=str(unavailable))
                log.warning(
                    "effects paused: the outside party is unavailable",
                    follower=self.name,
                    seq=item.seq,
                    error=str(unavailable),
                )
                return handled
            except Exception:
                # A bug or an unreadable event must not stop every later message: logged, and
                # passed (a repeatable effect is redone by the next event on the same item).
                log.exception("effect failed; passed over", follower=self.name, seq=item.seq)
                once = True
            self._position.handled = item.seq
            handled += 1
            if once:
                crash_point("notify.posted")
                self._save(item.seq)
                self._in_doubt = False
        self._position.handled = max(self._position.handled, batch.last_seq)
        return handled

    def save_progress(self) -> None:
        """Store how far this process got (repeatable effects included), on the timer."""
        if self._position.handled > self._position.saved:
            self._save(self._position.handled)

    def _save(self, seq: int, *, error: str | None = None) -> None:
        now = self._clock()
        with self._uow() as tx:
            cursor = tx.sink_cursors.lock(self.name)
            if cursor is None:
                return
            if error is None:
                moved = replace(
                    cursor,
                    event_seq=max(cursor.event_seq, seq),
                    attempts=0,
                    next_attempt_at=None,
                    last_error=None,
                    last_delivered_at=now,
                )
            else:
                attempts = cursor.attempts + 1
                wait = retry_wait(attempts, first=FIRST_RETRY_AFTER, longest=LONGEST_RETRY_WAIT)
                moved = replace(
                    cursor,
                    event_seq=max(cursor.event_seq, seq),
                    attempts=attempts,
                    next_attempt_at=now + wait,
                    last_error=error,
                )
            tx.sink_cursors.save(moved)
            tx.commit()
        self._position.saved = moved.event_seq
        self._position.handled = max(self._position.handled, moved.event_seq)


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
        if incident_id and incident_id not in batch.incidents:
            incident = tx.incidents.get(incident_id)
            if incident is not None:
                batch.incidents[incident_id] = incident
    return batch
