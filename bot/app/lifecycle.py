"""What happens as time passes, at close, and after a restart: expiry (on time and by the
sweep), time-outs, reminders, retries, closing, and finishing what a stopped process left half
done.

Every step is its own transaction, idempotent, and safe with several replicas: rows are taken
with SKIP LOCKED and outside work (Vault) runs under a claim, so two workers never do the same
item and a dead one's item is finished by the next. What Slack shows follows from the events
recorded (the notifier), so each outcome is told once whichever replica recorded it.
"""

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import structlog

from bot import metrics
from bot.app.deps import Deps
from bot.app.workflows import (
    count_outcome,
    finish_opening,
    incident_of_channel,
    issue_and_deliver,
    refresh_incident_card,
)
from bot.domain.access import RequestState
from bot.domain.errors import ChatError, ChatUnavailable
from bot.services import access, incidents, issuing, recovery, sweeps
from bot.services.crashpoints import crash_point
from bot.services.incidents import CloseResult

# Each sweep gives every grant ending this soon its expiry timer in this replica too, so a
# replica that dies takes no expiry with it.
EXPIRY_LOOK_AHEAD = timedelta(minutes=1)
# Between recording an incident and taking its claim, the opening worker holds nothing: recovery
# leaves an incident this young alone. (Making the channel is done under the claim, however long.)
OPENING_GRACE = timedelta(seconds=5)
log = structlog.get_logger(__name__)


def sweep(deps: Deps) -> int:
    """One pass of the periodic work; returns how many items it handled.

    Expire access at its end, time out undecided requests, remind approvers, warn requesters
    whose access ends soon, issue again what
    Vault refused while it was down or a dead process left unissued (and deliver it), retry
    unconfirmed revocations, finish what stopped workers left half done, and arm the expiry
    timers of grants ending soon. One failure is logged and does not stop the rest.
    """
    handled = 0
    now = deps.clock()
    metrics.SWEEP_LAG.set(sweeps.expiry_lag(uow=deps.uow, now=now).total_seconds())
    sweeps.fail_interrupted_issues(uow=deps.uow, clock=deps.clock)
    for request_id in sweeps.due_expiries(uow=deps.uow, now=now):
        handled += _safely(partial(expire, deps, request_id))
    for request_id in sweeps.due_timeouts(uow=deps.uow, policy=deps.policy, now=now):
        handled += _safely(partial(_time_out, deps, request_id))
    for request_id in sweeps.due_reminders(uow=deps.uow, policy=deps.policy, now=now):
        handled += _safely(partial(_remind, deps, request_id))
    for request_id in sweeps.due_expiry_warnings(uow=deps.uow, policy=deps.policy, now=now):
        handled += _safely(partial(_warn_expiry, deps, request_id))
    for request_id in issuing.due_issue_retries(uow=deps.uow, now=now):
        handled += _safely(partial(issue_and_deliver, deps, request_id=request_id, wait=False))
    handled += len(sweeps.retry_revocations(uow=deps.uow, broker=deps.broker, clock=deps.clock))
    handled += recover(deps)
    for request_id, ends_at in sweeps.ending_before(uow=deps.uow, until=now + EXPIRY_LOOK_AHEAD):
        deps.schedule_expiry(request_id, ends_at)
    metrics.ACTIVE_GRANTS.set(sweeps.count_active(uow=deps.uow))
    deps.notify()
    return handled


def expire(deps: Deps, request_id: str) -> None:
    """End access whose time is up, and say so. The sweep and the expiry timers both call it:
    the database decides whether it is due, so an early timer (an extended grant) does
    nothing, and of several workers at once only one acts."""
    with recovery.hold_request(uow=deps.uow, request_id=request_id, wait=False) as mine:
        if not mine:
            return
        request = access.expire_access(
            uow=deps.uow, broker=deps.broker, request_id=request_id, clock=deps.clock
        )
        if request is None:
            return
        count_outcome(request)
        crash_point("revoke.slack_posted")
    deps.notify()


def _warn_expiry(deps: Deps, request_id: str) -> None:
    """Record the requester's warning that access ends soon; the notifier tells them by DM,
    with an Extend button when there is room to extend."""
    if access.warn_expiry(
        uow=deps.uow, policy=deps.policy, request_id=request_id, now=deps.clock()
    ):
        deps.notify()


def _remind(deps: Deps, request_id: str) -> None:
    """One reminder, by DM, to each approver who has not decided (the notifier)."""
    if access.remind_approvers(
        uow=deps.uow, policy=deps.policy, request_id=request_id, now=deps.clock()
    ):
        deps.notify()


def _time_out(deps: Deps, request_id: str) -> None:
    request = access.time_out_request(
        uow=deps.uow, policy=deps.policy, request_id=request_id, now=deps.clock()
    )
    if request.state is RequestState.TIMED_OUT:
        crash_point("timeout.recorded")
    count_outcome(request)
    deps.notify()


def _safely(work: Callable[[], None]) -> int:
    try:
        work()
    except Exception:
        log.exception("sweep item failed")
        return 0
    return 1


def recover(deps: Deps) -> int:
    """Finish what a stopped process (or a Slack outage) left half done: incidents without
    their channel or card, credentials never delivered, closes without their summary,
    channels not archived. (Cards and outcomes not yet shown are the notifier's: it resumes
    where its cursor stands.)"""
    handled = 0
    opened_before = deps.clock() - OPENING_GRACE
    for incident in incidents.unfinished_opens(uow=deps.uow, opened_before=opened_before):
        handled += _safely(partial(_finish_opening, deps, incident.id))
    for request in recovery.undelivered_requests(uow=deps.uow):
        handled += _safely(partial(_end_undelivered, deps, request.id))
    closing = incidents.unfinished_closes(uow=deps.uow, policy=deps.policy, now=deps.clock())
    for incident in closing:
        handled += _safely(partial(_finish_close, deps, incident.id, wait=False))
    return handled


def _finish_opening(deps: Deps, incident_id: str) -> None:
    finished = finish_opening(deps, incident_id, late=True)
    if (
        finished is not None
        and incidents.incident_card(uow=deps.uow, incident_id=finished.id) is not None
    ):
        log.warning(
            "incident opening finished late: it stopped or Slack failed before its channel "
            "and card were made",
            incident_id=incident_id,
        )


def _end_undelivered(deps: Deps, request_id: str) -> None:
    """An issued credential whose worker died before handing it over is lost with it: end
    that access (the notifier tells the requester to ask again)."""
    with recovery.hold_request(uow=deps.uow, request_id=request_id, wait=False) as mine:
        if not mine:
            return
        ended = recovery.end_undelivered(
            uow=deps.uow, broker=deps.broker, request_id=request_id, clock=deps.clock
        )
        if ended is None:
            return
        log.warning("credential never delivered: access ended", request_id=request_id)
        count_outcome(ended)


def close_incident(deps: Deps, *, channel_id: str, user: str, resolution: str) -> None:
    """Close in the house order: closed → revoked and confirmed → summary posted and pinned
    → report uploaded → archived last, at once or (`archive_after`) by the sweep once due.
    Nothing is posted after archiving."""
    incident = incident_of_channel(deps, channel_id)
    with recovery.hold_incident(uow=deps.uow, incident_id=incident.id) as mine:
        mine.ensure_held()  # never close without it, even when waiting for it timed out
        result = incidents.close_incident(
            uow=deps.uow,
            policy=deps.policy,
            broker=deps.broker,
            incident_id=incident.id,
            closed_by=user,
            resolution=resolution,
            clock=deps.clock,
        )
        _show_close(deps, result)
        _archive(deps, incident.id)
    log.info(
        "incident closed",
        incident_id=incident.id,
        user=user,
        revoked=len(result.revoked),
        unconfirmed=len(result.unconfirmed),
    )


def _finish_close(deps: Deps, incident_id: str, *, wait: bool) -> None:
    """A close cut short: revoke what is left, post the summary, archive the channel."""
    with recovery.hold_incident(uow=deps.uow, incident_id=incident_id, wait=wait) as mine:
        if not mine:
            return
        if incidents.get_incident(uow=deps.uow, incident_id=incident_id).summary_pending:
            result = incidents.complete_close(
                uow=deps.uow, broker=deps.broker, incident_id=incident_id, clock=deps.clock
            )
            _show_close(deps, result)
        _archive(deps, incident_id)


def _show_close(deps: Deps, result: CloseResult) -> None:
    """Cards (the notifier, caught up first), topic, then the summary (posted, pinned,
    uploaded); then the close is shown. Until every card is shown the close stops here and
    the sweep finishes it: the channel is archived after the summary, and a card posted
    into an archived channel is refused for good."""
    incident = result.incident
    if not deps.notify_through():
        raise ChatUnavailable(
            "Slack has not shown every card of this incident yet; the close is finished as "
            "soon as it has."
        )
    refresh_incident_card(deps, incident)
    deps.chat.set_topic(incident.channel_id, deps.views.topic(incident))
    rules = deps.policy.incident
    text, blocks = deps.views.summary(
        result.summary, archive_in=rules.archive_after if incident.archive_pending else None
    )
    summary_ts = deps.chat.post(incident.channel_id, text=text, blocks=blocks)
    deps.chat.pin(incident.channel_id, summary_ts)
    deps.chat.upload_file(
        incident.channel_id,
        filename=f"{incident.id}-audit.md",
        content=result.summary.to_markdown(),
        title=f"{incident.id} audit report",
        comment="The audit report of this incident.",
    )
    incidents.mark_summary_posted(uow=deps.uow, incident_id=incident.id)
    crash_point("close.slack_posted")


def _archive(deps: Deps, incident_id: str) -> None:
    """Archive the channel if the close asked for it and `archive_after` has passed since (the
    channel stays open for people to talk it over until then). Not due yet, or a failure
    (logged): left pending, and the sweep archives it once due and Slack allows."""
    incident = incidents.get_incident(uow=deps.uow, incident_id=incident_id)
    if incident.summary_pending or not incidents.archive_due(incident, deps.policy, deps.clock()):
        return
    if not deps.notify_through():
        # A restarted notifier may still be redrawing cards: archived first, they would be
        # refused and their last state lost. The sweep archives once it is through.
        log.info("archive waits for the notifier", incident_id=incident_id)
        return
    try:
        deps.chat.archive(incident.channel_id)
    except ChatError as error:
        log.warning(
            "archive failed; the sweep tries again", incident_id=incident_id, error=str(error)
        )
        return
    incidents.mark_archived(uow=deps.uow, incident_id=incident_id)
