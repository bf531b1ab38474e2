"""What happens in Slack as time passes, at close, and after a restart: expiry (on time and
by the sweep), time-outs, reminders, retries, closing, and finishing what a stopped process
left half done.

Every step is its own transaction, idempotent, and safe with several replicas: rows are taken
with SKIP LOCKED and outside work (Vault, the Slack messages after a change) runs under a
claim, so two workers never do the same item and a dead one's item is finished by the next.
"""

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import structlog

from bot import metrics
from bot.domain.access import RequestState
from bot.domain.errors import ChatError
from bot.services import access, incidents, issuing, recovery, sweeps
from bot.services.crashpoints import crash_point
from bot.services.incidents import CloseResult
from bot.slack.blocks import access as access_blocks
from bot.slack.blocks import incident as incident_blocks
from bot.slack.workflows import (
    Deps,
    announce_outcome,
    count_outcome,
    finish_opening,
    incident_of_channel,
    incident_of_request,
    issue_and_deliver,
    post_missing_card,
    refresh_card,
    refresh_incident_card,
    tell_requester,
)

# Each sweep gives every grant ending this soon its expiry timer in this replica too, so a
# replica that dies takes no expiry with it.
EXPIRY_LOOK_AHEAD = timedelta(minutes=1)
# The filing worker's own time to post a request's card; after it, recovery posts it.
CARD_GRACE = timedelta(seconds=15)
# The opening worker's own time to make an incident's channel and card; after it, recovery.
OPENING_GRACE = timedelta(seconds=15)
log = structlog.get_logger(__name__)


def sweep(deps: Deps) -> int:
    """One pass of the periodic work; returns how many items it handled.

    Expire access at its end, time out undecided requests, remind approvers, issue again what
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
    for request_id in issuing.due_issue_retries(uow=deps.uow, now=now):
        handled += _safely(partial(issue_and_deliver, deps, request_id=request_id, wait=False))
    for grant in sweeps.retry_revocations(uow=deps.uow, broker=deps.broker, clock=deps.clock):
        handled += _safely(partial(refresh_card, deps, grant.request_id))
    handled += recover(deps)
    for request_id, ends_at in sweeps.ending_before(uow=deps.uow, until=now + EXPIRY_LOOK_AHEAD):
        deps.schedule_expiry(request_id, ends_at)
    metrics.ACTIVE_GRANTS.set(sweeps.count_active(uow=deps.uow))
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
        announce_outcome(deps, request.id)
        crash_point("revoke.slack_posted")


def _remind(deps: Deps, request_id: str) -> None:
    """One thread reply mentioning the approvers who have not decided: no DM storm."""
    waiting = access.remind_approvers(
        uow=deps.uow, policy=deps.policy, request_id=request_id, now=deps.clock()
    )
    if waiting:
        request = access.get_request(uow=deps.uow, request_id=request_id)
        incident = incident_of_request(deps, request_id)
        deps.chat.post(
            incident.channel_id,
            text=access_blocks.reminder(request, waiting),
            thread_ts=request.card_ts,
        )


def _time_out(deps: Deps, request_id: str) -> None:
    count_outcome(
        access.time_out_request(
            uow=deps.uow, policy=deps.policy, request_id=request_id, now=deps.clock()
        )
    )
    refresh_card(deps, request_id)
    tell_requester(deps, request_id)


def _safely(work: Callable[[], None]) -> int:
    try:
        work()
    except Exception:
        log.exception("sweep item failed")
        return 0
    return 1


def recover(deps: Deps) -> int:
    """Finish what a stopped process (or a Slack outage) left half done: incidents without
    their channel or card, cards never posted, outcomes not shown, credentials never
    delivered, closes without their summary, channels not archived."""
    handled = 0
    opened_before = deps.clock() - OPENING_GRACE
    for incident in incidents.unfinished_opens(uow=deps.uow, opened_before=opened_before):
        handled += _safely(partial(_finish_opening, deps, incident.id))
    filed_before = deps.clock() - CARD_GRACE
    for request in recovery.requests_without_card(uow=deps.uow, filed_before=filed_before):
        handled += _safely(partial(_post_card, deps, request.id))
    for request in recovery.untold_requests(uow=deps.uow):
        if recovery.is_incident_open(uow=deps.uow, incident_id=request.incident_id):
            handled += _safely(partial(_tell_untold, deps, request.id))
    for incident in incidents.unfinished_closes(uow=deps.uow):
        handled += _safely(partial(_finish_close, deps, incident.id, wait=False))
    return handled


def _finish_opening(deps: Deps, incident_id: str) -> None:
    finished = finish_opening(deps, incident_id, late=True)
    if finished is not None and finished.card_ts is not None:
        log.warning(
            "incident opening finished late: it stopped or Slack failed before its channel "
            "and card were made",
            incident_id=incident_id,
        )


def _post_card(deps: Deps, request_id: str) -> None:
    if post_missing_card(deps, request_id, wait=False) is not None:
        log.warning(
            "card posted late: its filing stopped before Slack showed it", request_id=request_id
        )


def _tell_untold(deps: Deps, request_id: str) -> None:
    with recovery.hold_request(uow=deps.uow, request_id=request_id, wait=False) as mine:
        if not mine:
            return
        request = access.get_request(uow=deps.uow, request_id=request_id)
        if not request.notify_pending:
            return
        if request.state is RequestState.ACTIVE:
            ended = recovery.end_undelivered(
                uow=deps.uow, broker=deps.broker, request_id=request_id, clock=deps.clock
            )
            if ended is None:
                return
            log.warning("credential never delivered: access ended", request_id=request_id)
            count_outcome(ended)
        announce_outcome(deps, request_id)


def close_incident(deps: Deps, *, channel_id: str, user: str, resolution: str) -> None:
    """Close in the house order: closed → revoked and confirmed → summary posted and pinned
    → report uploaded → archived last. Nothing is posted after archiving."""
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
    """Cards, topic, then the summary (posted, pinned, uploaded); then the close is shown."""
    incident = result.incident
    ended = {g.request_id for g in [*result.revoked, *result.unconfirmed]}
    for request in recovery.untold_requests(uow=deps.uow, incident_id=incident.id):
        ended.add(request.id)
        count_outcome(request)
    for request_id in sorted(ended):
        refresh_card(deps, request_id)
        state = access.get_request(uow=deps.uow, request_id=request_id).state
        recovery.mark_told(uow=deps.uow, request_id=request_id, state=state)
    refresh_incident_card(deps, incident)
    deps.chat.set_topic(incident.channel_id, incident_blocks.topic(incident))
    text, blocks = incident_blocks.summary_blocks(result.summary)
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
    """Archive the channel if the close asked for it. A failure is logged and left pending:
    the sweep archives it once Slack allows."""
    incident = incidents.get_incident(uow=deps.uow, incident_id=incident_id)
    if not incident.archive_pending or incident.summary_pending:
        return
    try:
        deps.chat.archive(incident.channel_id)
    except ChatError as error:
        log.warning(
            "archive failed; the sweep tries again", incident_id=incident_id, error=str(error)
        )
        return
    incidents.mark_archived(uow=deps.uow, incident_id=incident_id)
