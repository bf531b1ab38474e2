"""The Slack notifier: what people see, drawn from the event stream.

It follows the audit chain (`bot.services.event_stream`) and, for each event, updates the
request's card in place and says in its thread what happened, for the channel, mentioning
neither the requester nor the approvers: a card posted for a new request, its outcome, an
extension asked and answered, approvers reminded. Approvers get each request, extension and
break-glass review privately, once each, as a task (a DM with the buttons); the requester hears
privately, once, how their request, extension or review went, with the cause, and that access
ends soon. Every DM about a request is kept (`CardRepository.private_messages`) and redrawn
when the request moves on: a task loses its buttons once decided, the credential message its
credential once access ended. "Told" is this follower's cursor, not a flag: a stop, a Slack
outage or another replica taking over resumes at the first event not yet handled, and no
message is posted twice: each carries a marker (its event's sequence number, in Slack message
metadata), and a post the follower is in doubt about is looked for in Slack before it is
posted again.

Cards are drawn from the request as it is when the batch is read, so redrawing one is always
safe; within one batch a card is drawn once. The credential itself is not posted here: it exists
only in the memory of the worker that issued it (see `bot.app.workflows.issue_and_deliver`).
"""

from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from bot.app.workflows import CREDENTIAL_DM
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
    ExpiryWarned,
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
from bot.domain.extension import Extension, ExtensionState, extension_headroom
from bot.domain.incident import Incident
from bot.domain.ports import ChatGateway, PrivateMessage, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy, Delivery, DynamicGroup
from bot.services import access
from bot.services.event_stream import Batch, EffectUnavailable, StreamEvent
from bot.slack.blocks import access as access_blocks
from bot.slack.blocks import incident as incident_blocks
from bot.slack.blocks import messages
from bot.slack.blocks import tasks as task_blocks

NAME = "slack-notifier"
log = structlog.get_logger(__name__)

# Events after which the request's card is drawn again, and nothing more is said.
_REDRAW = (
    DecisionRecorded,
    RequestApproved,
    RevocationConfirmed,
    RevocationFailed,
    ExtensionDecided,
    ExtensionApproved,
)
# Outcomes told in the card's thread (for the channel) and to the requester by DM.
_OUTCOMES = (RequestDenied, RequestCancelled, RequestTimedOut, RequestFailed, AccessEnded)
_EXTENSION_OUTCOMES = (ExtensionDenied, ExtensionApplied, ExtensionFailed)
# Events after which the DMs kept for a request are redrawn (tasks, reviews, extension tasks,
# reminders, warnings, the credential message).
_REDRAW_PRIVATE = (
    DecisionRecorded,
    RequestApproved,
    BreakGlassConfirmed,
    ExtensionDecided,
    ExtensionApproved,
    *_EXTENSION_OUTCOMES,
    *_OUTCOMES,
)
# The kinds of kept DMs; an extension's tasks are kept under "x:" and the extension's id, so
# each extension's are redrawn as that extension moves on.
TASK, REMINDER, REVIEW, WARNING, OUTCOME = "task", "reminder", "review", "warning", "outcome"
EXTENSION_TASK = "x:"


@dataclass
class SlackNotifier:
    """The `StreamHandler` that keeps Slack in step with the audit chain."""

    uow: UnitOfWorkFactory
    chat: ChatGateway
    policy: AccessPolicy
    _drawn: set[str] = field(default_factory=set)
    _drawn_privately: set[str] = field(default_factory=set)
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
            self._batch, self._drawn, self._drawn_privately = batch, set(), set()
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
        if isinstance(event, _REDRAW_PRIVATE):
            self._redraw_private(request)
        if isinstance(event, RequestFiled):
            self._card_and_notes(request, incident, batch)
            self._tasks(request, incident)
            return True
        if isinstance(event, BreakGlassConfirmed):
            self._draw(request, incident)
            voice = messages.for_channel(request)
            self._reply(request, incident, messages.review_outcome(request, voice), "reviewed")
            text, blocks = task_blocks.requester_review_outcome(request)
            self._dm(request, request.requester_id, "reviewed", text, blocks)
            return True
        if isinstance(event, ExpiryWarned):
            return self._expiry_warning(event, request)
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
            text = access_blocks.outcome_for_channel(request, retrying=True, timeout=self._timeout)
            self._reply(request, incident, text, "retrying")
            return True
        if isinstance(event, Delivered):
            self._draw(request, incident)
            if request.state is not RequestState.ACTIVE:
                return False  # ended since: its own event tells how
            in_dm = self.policy.resource(request.resource).delivery is Delivery.WRAPPED
            text = access_blocks.outcome_for_channel(request, in_dm=in_dm)
            self._reply(request, incident, text, "ready")
            return True
        if isinstance(event, _OUTCOMES):
            self._draw(request, incident)
            told = self._tell_requester(event, request)
            if _ended_by_close(event):
                return told  # the close summary tells everyone at once
            text = access_blocks.outcome_for_channel(request, timeout=self._timeout)
            self._reply(request, incident, text, "outcome")
            return True
        if isinstance(event, (ExtensionAsked, *_EXTENSION_OUTCOMES)):
            return self._extension(event, request, incident)
        if isinstance(event, ApproversReminded) and event.approvers:
            if request.state is not RequestState.PENDING:
                return False  # decided since: nobody is reminded of it
            waiting = frozenset(a for a in event.approvers if request.decision_by(a) is None)
            self._remind(request, incident, waiting)
            self._reply(request, incident, access_blocks.reminder(request, waiting), "reminder")
            return True
        return False

    # -- direct messages ------------------------------------------------------------------

    def _tasks(self, request: AccessRequest, incident: Incident) -> None:
        """Each approver who may decide gets the request once, as a task of their own; each
        reviewer of break-glass access, its review."""
        if request.awaiting_review:
            rule = self.policy.resource(request.resource)
            kept = {m.user_id for m in self._kept(request) if m.kind == REVIEW}
            for reviewer in sorted(request.possible_approvers - kept):
                text, blocks = task_blocks.review_task(
                    request, rule, reviewer, channel_id=incident.channel_id
                )
                self._dm(request, reviewer, REVIEW, text, blocks)
            return
        if request.state is not RequestState.PENDING or request.break_glass:
            return
        kept = {m.user_id for m in self._kept(request) if m.kind == TASK}
        for approver in sorted(request.possible_approvers - kept):
            self._dm_task(request, incident, approver, kind=TASK)

    def _extension_tasks(
        self, request: AccessRequest, extension: Extension, incident: Incident
    ) -> None:
        """Each approver who may decide an extension gets it once, as a task of their own."""
        if extension.state is not ExtensionState.PENDING:
            return
        kind = EXTENSION_TASK + extension.id
        rule = self.policy.resource(request.resource)
        kept = {m.user_id for m in self._kept(request) if m.kind == kind}
        for approver in sorted(extension.waiting_on() - kept):
            text, blocks = task_blocks.extension_task(
                request, extension, rule, approver, channel_id=incident.channel_id
            )
            self._dm(request, approver, kind, text, blocks)

    def _remind(self, request: AccessRequest, incident: Incident, waiting: frozenset[str]) -> None:
        """The one reminder, by DM, to each approver who has not decided, with the buttons."""
        kept = {m.user_id for m in self._kept(request) if m.kind == REMINDER}
        for approver in sorted(waiting - kept):
            self._dm_task(request, incident, approver, kind=REMINDER)

    def _dm_task(
        self, request: AccessRequest, incident: Incident, approver: str, *, kind: str
    ) -> None:
        text, blocks = task_blocks.approver_task(
            request,
            self.policy.resource(request.resource),
            approver,
            channel_id=incident.channel_id,
            timeout=self._timeout,
            reminder=kind == REMINDER,
        )
        self._dm(request, approver, kind, text, blocks)

    def _dm(
        self,
        request: AccessRequest,
        user: str,
        kind: str,
        text: str,
        blocks: list[dict[str, object]] | None,
    ) -> None:
        """Post a DM about the request once (its marker names the event, the kind and the
        user) and keep where it is; a DM Slack refuses (a deactivated user) is passed."""
        what = f"{kind}:{user}"
        try:
            channel = self.chat.open_dm(user)
            ts = self._posted(channel, None, what)
            if ts is None:
                ts = self.chat.post(channel, text=text, blocks=blocks, marker=self._marker(what))
        except ChatUnavailable:
            raise
        except ChatError as refused:
            _refused(refused, request.id)
            return
        message = PrivateMessage(request.id, kind, user, channel, ts)
        access.keep_private_message(uow=self.uow, message=message)
        if self._batch is not None:
            self._batch.private.setdefault(request.id, []).append(message)

    def _kept(self, request: AccessRequest) -> list[PrivateMessage]:
        """Where the request's direct messages are: read with the batch, plus those posted
        since."""
        if self._batch is None:
            return list(access.private_messages(uow=self.uow, request_id=request.id))
        return list(self._batch.private.get(request.id, []))

    def _redraw_private(self, request: AccessRequest) -> None:
        """Redraw every DM kept for the request as it is now, once per batch: tasks and
        reminders lose their buttons once their approver has nothing left to decide, the
        warning its Extend once extended or ended, the credential message its credential once
        access ended (while it lasts, that one is never redrawn: the credential is not kept)."""
        if request.id in self._drawn_privately:
            return
        self._drawn_privately.add(request.id)
        for kept in self._kept(request):
            drawn = self._private_view(request, kept)
            if drawn is None:
                continue
            text, blocks = drawn
            try:
                self.chat.update(kept.channel_id, kept.ts, text=text, blocks=blocks)
            except ChatUnavailable:
                self._drawn_privately.discard(request.id)
                raise
            except ChatError as refused:
                _refused(refused, request.id)

    def _private_view(
        self, request: AccessRequest, kept: PrivateMessage
    ) -> tuple[str, list[dict[str, object]]] | None:
        incident = self._batch.incident(request.incident_id) if self._batch else None
        channel_id = incident.channel_id if incident is not None else ""
        rule = self.policy.resource(request.resource)
        if kept.kind in (TASK, REMINDER):
            return task_blocks.approver_task(
                request,
                rule,
                kept.user_id,
                channel_id=channel_id,
                timeout=self._timeout,
                reminder=kept.kind == REMINDER,
            )
        if kept.kind == REVIEW:
            return task_blocks.review_task(request, rule, kept.user_id, channel_id=channel_id)
        if kept.kind.startswith(EXTENSION_TASK):
            extension_id = kept.kind.removeprefix(EXTENSION_TASK)
            extension = next((e for e in request.extensions if e.id == extension_id), None)
            if extension is None:
                return None
            return task_blocks.extension_task(
                request, extension, rule, kept.user_id, channel_id=channel_id
            )
        if kept.kind == WARNING:
            open_ = request.state is RequestState.ACTIVE and request.expiry_warned_for == (
                request.ends_at
            )
            return task_blocks.expiry_warning(request, self._room(request), open_=open_)
        if kept.kind == CREDENTIAL_DM and request.state.is_terminal:
            return task_blocks.credential_ended(request, timeout=self._timeout)
        return None

    def _tell_requester(self, event: DomainEvent, request: AccessRequest) -> bool:
        """The requester's DM about how their request ended, with its cause; not for what
        they did themselves, nor for access whose credential message was just redrawn to
        say it. True when a DM was posted."""
        if not isinstance(event, _OUTCOMES) or request.ended_by == request.requester_id:
            return False
        if request.state is RequestState.CANCELLED and _ended_by_close(event):
            return False  # never started: the close summary says it
        kinds = {m.kind for m in self._kept(request)}
        if isinstance(event, AccessEnded) and CREDENTIAL_DM in kinds:
            return False
        text, blocks = task_blocks.requester_outcome(request, timeout=self._timeout)
        self._dm(request, request.requester_id, OUTCOME, text, blocks)
        return True

    def _expiry_warning(self, event: ExpiryWarned, request: AccessRequest) -> bool:
        """The requester's warning that access ends soon, with Extend when there is room;
        not when it ended or was extended since (a warning for the new end follows)."""
        if request.state is not RequestState.ACTIVE or request.ends_at != event.ends_at:
            return False
        text, blocks = task_blocks.expiry_warning(request, self._room(request), open_=True)
        self._dm(request, request.requester_id, WARNING, text, blocks)
        return True

    def _room(self, request: AccessRequest) -> timedelta | None:
        """How much longer the access may still be extended; None for break-glass."""
        if request.break_glass:
            return None
        if request.activated_at is None or request.ends_at is None:
            return timedelta(0)
        rule = self.policy.resource(request.resource)
        return extension_headroom(
            activated_at=request.activated_at, ends_at=request.ends_at, max_ttl=rule.max_ttl
        )

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
        """An extension asked: a task for each approver who may decide it, and a thread note
        that mentions them only where the policy asks. Decided or applied: the requester told
        by DM, the channel in the thread."""
        extension_id = getattr(event, "extension_id", "")
        extension = next((e for e in request.extensions if e.id == extension_id), None)
        self._draw(request, incident)
        if extension is None:
            return False
        if isinstance(event, ExtensionAsked):
            self._extension_tasks(request, extension, incident)
            rule = self.policy.resource(request.resource)
            text = messages.extension_asked(
                request, extension, mention_approvers=rule.mentions_approvers
            )
            self._reply(request, incident, text, "extension")
            return True
        if extension.state is ExtensionState.PENDING:
            return False  # not decided yet as this batch reads it: its outcome comes later
        voice = messages.for_channel(request)
        self._reply(
            request, incident, messages.extension_outcome(request, extension, voice), "extension"
        )
        text, blocks = task_blocks.requester_extension_outcome(request, extension)
        self._dm(request, extension.requested_by, "x-outcome", text, blocks)
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
