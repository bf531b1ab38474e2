"""The Slack notifier: what people see, drawn from the event stream.

It follows the audit chain (`bot.services.event_stream`) and, for each event, updates the
request's card in place and tells the people concerned in its thread: a card posted for a new
request, the outcome told to the requester once, an extension asked and answered, approvers
reminded. "Told" is this follower's cursor, not a flag: a stop, a Slack outage or another
replica taking over resumes at the first event not yet handled, and no message is posted twice:
each carries a marker (its event's sequence number, in Slack message metadata), and a post the
follower is in doubt about is looked for in Slack before it is posted again.

Cards are drawn from the request as it is when the batch is read, so redrawing one is always
safe; within one batch a card is drawn once. The credential itself is not posted here: it exists
only in the memory of the worker that issued it (see `bot.app.workflows.issue_and_deliver`).
"""

from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from bot.domain.access import CLOSE_REASON, AccessRequest, RequestState
from bot.domain.errors import ChatError, ChatUnavailable
from bot.domain.events import (
    AccessEnded,
    ApproversReminded,
    BreakGlassConfirmed,
    DecisionRecorded,
    Delivered,
    DomainEvent,
    EndCause,
    ExtensionApplied,
    ExtensionApproved,
    ExtensionAsked,
    ExtensionDecided,
    ExtensionDenied,
    ExtensionFailed,
    GroupLookupFailed,
    IncidentChannelCreated,
    IncidentClosed,
    IncidentOpened,
    IssueFailed,
    RequestApproved,
    RequestCancelled,
    RequestDenied,
    RequestFailed,
    RequestFiled,
    RequestTimedOut,
    RevocationConfirmed,
    RevocationFailed,
)
from bot.domain.incident import Incident
from bot.domain.ports import ChatGateway, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy, DynamicGroup
from bot.services import access
from bot.services.event_stream import Batch, EffectUnavailable, StreamEvent
from bot.slack.blocks import access as access_blocks
from bot.slack.blocks import extension as extension_blocks
from bot.slack.blocks import incident as incident_blocks

NAME = "slack-notifier"
log = structlog.get_logger(__name__)

# Events after which the request's card is drawn again, and nothing more is said.
_REDRAW = (
    DecisionRecorded,
    RequestApproved,
    BreakGlassConfirmed,
    RevocationConfirmed,
    RevocationFailed,
    ExtensionDecided,
    ExtensionApproved,
)
# Outcomes the requester is told of in the card's thread.
_OUTCOMES = (RequestDenied, RequestCancelled, RequestTimedOut, RequestFailed, AccessEnded)
_EXTENSION_OUTCOMES = (ExtensionDenied, ExtensionApplied, ExtensionFailed)


@dataclass
class SlackNotifier:
    """The `StreamHandler` that keeps Slack in step with the audit chain."""

    uow: UnitOfWorkFactory
    chat: ChatGateway
    policy: AccessPolicy
    _drawn: set[str] = field(default_factory=set)
    _batch: Batch | None = None
    _seq: int = 0
    _in_doubt: bool = False

    @property
    def name(self) -> str:
        return NAME

    @property
    def _timeout(self) -> timedelta:
        """How long a request waits for a decision: said when one timed out."""
        return self.policy.incident.request_timeout

    def handle(self, item: StreamEvent, batch: Batch, *, in_doubt: bool) -> bool:
        if batch is not self._batch:
            self._batch, self._drawn = batch, set()
        self._seq, self._in_doubt = item.seq, in_doubt
        event = item.event
        request = batch.request(event.request_id)
        incident = batch.incident(event.incident_id or (request.incident_id if request else None))
        if incident is None or not incident.has_channel:
            return False
        try:
            if request is None:
                return self._announce(event, incident)
            return self._handle(event, batch, request, incident)
        except ChatUnavailable as unavailable:
            raise EffectUnavailable(unavailable.message) from None
        except ChatError as refused:
            _refused(refused, request.id if request else incident.id)
            return True

    def _announce(self, event: DomainEvent, incident: Incident) -> bool:
        """One line in the announce channel (when the policy names one) for an incident whose
        channel was made, and for one closed."""
        where = self.policy.incident.announce_channel
        if where is None:
            return False
        if isinstance(event, IncidentChannelCreated) or (
            isinstance(event, IncidentOpened) and event.channel_id
        ):
            text = incident_blocks.announce_opened(incident)
        elif isinstance(event, IncidentClosed):
            text = incident_blocks.announce_closed(incident)
        else:
            return False
        if self._posted(where, None, "announce") is None:
            self.chat.post(where, text=text, marker=self._marker("announce"))
        return True

    def _handle(
        self, event: DomainEvent, batch: Batch, request: AccessRequest, incident: Incident
    ) -> bool:
        if isinstance(event, RequestFiled):
            return self._card_and_notes(request, incident, batch)
        if isinstance(event, RequestApproved) and event.automatic and not request.break_glass:
            self._draw(request, incident)
            self._reply(request, incident, access_blocks.auto_approved(request), "auto")
            return True
        if isinstance(event, _REDRAW):
            self._draw(request, incident)
            return False
        if isinstance(event, IssueFailed):
            retrying = event.retrying and request.state is RequestState.APPROVED
            self._draw(request, incident, retrying=retrying)
            if not retrying:
                return False  # the request's end (RequestFailed) tells the requester
            text = access_blocks.outcome_for_requester(
                request, retrying=True, timeout=self._timeout
            )
            self._reply(request, incident, text, "retrying")
            return True
        if isinstance(event, Delivered):
            self._draw(request, incident)
            if request.state is not RequestState.ACTIVE:
                return False  # ended since: its own event tells how
            self._reply(request, incident, access_blocks.outcome_for_requester(request), "ready")
            return True
        if isinstance(event, _OUTCOMES):
            self._draw(request, incident)
            if _ended_by_close(event):
                return False  # the close summary tells everyone at once
            text = access_blocks.outcome_for_requester(request, timeout=self._timeout)
            self._reply(request, incident, text, "outcome")
            return True
        if isinstance(event, (ExtensionAsked, *_EXTENSION_OUTCOMES)):
            return self._extension(event, request, incident)
        if isinstance(event, ApproversReminded) and event.approvers:
            waiting = frozenset(event.approvers)
            self._reply(request, incident, access_blocks.reminder(request, waiting), "reminder")
            return True
        return False

    def _card_and_notes(self, request: AccessRequest, incident: Incident, batch: Batch) -> bool:
        """Post the card of a new request (unless it has one), then one note for the lookups
        that failed when it was filed."""
        if batch.card(request.id) is None:
            card_ts = self._posted(incident.channel_id, None, "card")
            if card_ts is None:
                text, blocks = access_blocks.approval_card(
                    request, self.policy.resource(request.resource), timeout=self._timeout
                )
                card_ts = self.chat.post(
                    incident.channel_id, text=text, blocks=blocks, marker=self._marker("card")
                )
            access.attach_request_card(uow=self.uow, request_id=request.id, card_ts=card_ts)
            batch.cards[request.id] = card_ts
            self._drawn.add(request.id)
        notes = tuple(
            item.event.error
            for item in batch.events
            if isinstance(item.event, GroupLookupFailed) and item.event.request_id == request.id
        )
        if notes:
            failed = [self._group_of(note) for note in notes]
            oncall = any(group is not None and group.is_pagerduty for group in failed)
            others = any(group is None or not group.is_pagerduty for group in failed)
            note = access_blocks.lookup_note(oncall=oncall, others=others)
            self._reply(request, incident, note, "lookups")
            self._tell_operators(
                access_blocks.ops_lookup_details(request, incident.channel_id, notes)
            )
        return True

    def _group_of(self, note: str) -> DynamicGroup | None:
        """The dynamic group a failed lookup's note is about (each starts with its name)."""
        return next(
            (g for g in self.policy.dynamic_groups.values() if note.startswith(f"{g.name} (")),
            None,
        )

    def _tell_operators(self, text: str) -> None:
        """The details for the operators' channel, when the policy names one. Slack refusing
        it (the app not in that channel) is logged: the log has the details too."""
        where = self.policy.incident.ops_channel
        if where is None or self._posted(where, None, "ops") is not None:
            return
        try:
            self.chat.post(where, text=text, marker=self._marker("ops"))
        except ChatUnavailable:
            raise
        except ChatError as refused:
            log.warning("the operators' channel refused a post", error=refused.message)

    def _extension(self, event: DomainEvent, request: AccessRequest, incident: Incident) -> bool:
        extension_id = getattr(event, "extension_id", "")
        extension = next((e for e in request.extensions if e.id == extension_id), None)
        self._draw(request, incident)
        if extension is None:
            return False
        if isinstance(event, ExtensionAsked):
            text = extension_blocks.extension_asked(request, extension)
        else:
            text = extension_blocks.extension_outcome(request, extension)
        self._reply(request, incident, text, "extension")
        return True

    def _draw(self, request: AccessRequest, incident: Incident, *, retrying: bool = False) -> None:
        """Draw the card again as the request is now, once per batch (the retrying note is
        always drawn: it is not in the stored state)."""
        card_ts = self._card(request)
        if card_ts is None or not incident.has_channel:
            return
        if request.id in self._drawn and not retrying:
            return
        text, blocks = access_blocks.approval_card(
            request,
            self.policy.resource(request.resource),
            retrying=retrying,
            timeout=self._timeout,
        )
        self._drawn.add(request.id)
        try:
            self.chat.update(incident.channel_id, card_ts, text=text, blocks=blocks)
        except ChatUnavailable:
            self._drawn.discard(request.id)
            raise
        except ChatError as refused:
            _refused(refused, request.id)  # the card is gone: the thread still hears of it

    def _reply(self, request: AccessRequest, incident: Incident, text: str, what: str) -> None:
        """Post in the card's thread, unless this very reply is already there."""
        card_ts = self._card(request)
        if self._posted(incident.channel_id, card_ts, what) is not None:
            return
        self.chat.post(incident.channel_id, text=text, thread_ts=card_ts, marker=self._marker(what))

    def _card(self, request: AccessRequest) -> str | None:
        return self._batch.card(request.id) if self._batch is not None else None

    def _marker(self, what: str) -> str:
        return f"{self._seq}:{what}"

    def _posted(self, channel: str, thread_ts: str | None, what: str) -> str | None:
        """Only when in doubt (see `event_stream`): the ts of this post if Slack has it."""
        if not self._in_doubt:
            return None
        try:
            found = self.chat.find_marked(channel, self._marker(what), thread_ts=thread_ts)
        except ChatUnavailable:
            raise
        except ChatError as refused:  # e.g. the app lacks channels:history: say it twice
            log.warning("could not look for a post in doubt; posting it", error=refused.message)
            return None
        if found is not None:
            log.info("already posted before a stop; not posted again", marker=self._marker(what))
        return found


def _refused(refused: ChatError, request_id: str) -> None:
    """Slack refused for good (message or channel gone, channel archived): passed over, or the
    stream would stop behind it forever."""
    log.warning(
        "Slack refused a notification; passed over", request_id=request_id, error=refused.message
    )


def _ended_by_close(event: DomainEvent) -> bool:
    if isinstance(event, AccessEnded):
        return event.why is EndCause.INCIDENT_CLOSED
    return isinstance(event, RequestCancelled) and event.reason == CLOSE_REASON
