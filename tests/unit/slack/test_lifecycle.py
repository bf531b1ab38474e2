"""Expiry on time, one worker per item, and recovery of what a stopped process left half done."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState, Verdict
from bot.domain.errors import ChatUnavailable
from bot.domain.events import EndCause
from bot.domain.grant import Grant, GrantStatus
from bot.scheduler import ExpiryTimers, build_scheduler
from bot.services import access, incidents, issuing, recovery
from bot.services.common import access_of, record_access
from tests.unit.fakes import FakeBroker
from tests.unit.slack.scene import Clock, approve, broker, chat, filed, state


def outcome_posts(deps: Deps) -> list[str]:
    """What the channel was told after the request was filed: card updates and thread replies
    (the DMs kept about it are redrawn too, privately: not counted here)."""
    shown = []
    for method, args in chat(deps).calls:
        if args.get("channel", "").startswith("D"):
            continue
        if method == "chat.update" or (method == "chat.postMessage" and args.get("thread_ts")):
            shown.append(json.dumps(args.get("blocks")) + args.get("text", ""))
    return shown


def test_issuing_arms_the_expiry_timer_at_the_grant_end(deps: Deps, clock: Clock) -> None:
    timers: list[tuple[str, datetime]] = []
    deps.schedule_expiry = lambda request_id, at: timers.append((request_id, at))
    _, request_id = filed(deps, duration="30m")
    approve(deps, request_id)
    assert timers == [(request_id, clock.now + timedelta(minutes=30))]


def test_expiry_is_done_and_told_once_and_an_early_timer_does_nothing(
    deps: Deps, clock: Clock
) -> None:
    _, request_id = filed(deps)
    approve(deps, request_id)
    told = len(outcome_posts(deps))
    clock.now += timedelta(minutes=29)  # a timer set before an extension fires early
    lifecycle.expire(deps, request_id)
    assert state(deps, request_id) is RequestState.ACTIVE
    assert len(outcome_posts(deps)) == told
    clock.now += timedelta(minutes=1)
    lifecycle.expire(deps, request_id)
    lifecycle.expire(deps, request_id)  # a second replica's timer, or the sweep
    assert state(deps, request_id) is RequestState.EXPIRED
    assert len(broker(deps).revoked) == 1
    expired = outcome_posts(deps)[told:]
    assert len(expired) == 2 and all("ended: it expired at" in post for post in expired)
    assert lifecycle.sweep(deps) == 0


def test_a_request_another_worker_holds_is_left_to_it(deps: Deps, clock: Clock) -> None:
    _, request_id = filed(deps)
    approve(deps, request_id)
    clock.now += timedelta(minutes=31)
    with recovery.hold_request(uow=deps.uow, request_id=request_id):
        lifecycle.expire(deps, request_id)  # this worker's timer: another holds the request
    assert state(deps, request_id) is RequestState.ACTIVE
    lifecycle.expire(deps, request_id)
    assert state(deps, request_id) is RequestState.EXPIRED


def test_the_sweep_arms_timers_for_grants_ending_within_its_look_ahead(
    deps: Deps, clock: Clock
) -> None:
    _, soon = filed(deps, duration="45s")
    approve(deps, soon)
    _, later = filed(deps, duration="2h")
    approve(deps, later)
    armed: list[str] = []
    deps.schedule_expiry = lambda request_id, _at: armed.append(request_id)
    lifecycle.sweep(deps)
    assert armed == [soon]


class SlowBroker(FakeBroker):
    """Vault taking its time to revoke, so that workers overlap."""

    def revoke(self, *, grant: Grant) -> datetime:
        time.sleep(0.2)
        return super().revoke(grant=grant)


def test_workers_revoking_one_grant_at_once_call_vault_once(deps: Deps, clock: Clock) -> None:
    deps.broker = slow = SlowBroker()
    _, request_id = filed(deps)
    approve(deps, request_id)
    with deps.uow() as tx:  # the access ends; its credential waits for Vault to revoke it
        request = tx.requests.get(request_id, for_update=True)
        assert request is not None
        ending = access_of(tx, request)
        ended = ending.end(EndCause.REVOKED, now=clock.now, by=None, reason="closed")
        record_access(tx, ending, ended)
        grant = ending.grant
        assert grant is not None and grant.status is GrantStatus.REVOKING
        tx.commit()

    def revoke(wait: bool) -> None:
        issuing.revoke_grant(uow=deps.uow, broker=slow, grant_id=grant.id, clock=clock, wait=wait)

    workers = [threading.Thread(target=revoke, args=(wait,)) for wait in (True, False, True)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert slow.revoked == [grant.id]
    with deps.uow() as tx:
        stored = tx.grants.get(grant.id)
    assert stored is not None and stored.status is GrantStatus.REVOKED


def test_a_credential_never_delivered_is_revoked_and_the_requester_told(
    deps: Deps, clock: Clock
) -> None:
    _, request_id = filed(deps)
    access.decide_request(  # approved; the process then issues and dies before delivering
        uow=deps.uow,
        request_id=request_id,
        approver_id="U0LEAD1",
        verdict=Verdict.APPROVE,
        reason=None,
        now=clock.now,
    )
    issuing.issue_access(
        uow=deps.uow,
        policy=deps.policy,
        broker=deps.broker,
        request_id=request_id,
        clock=clock,
        track_delivery=True,
    )
    with recovery.hold_request(uow=deps.uow, request_id=request_id):
        lifecycle.sweep(deps)  # a live worker is delivering it: left alone
    assert state(deps, request_id) is RequestState.ACTIVE
    before = len(outcome_posts(deps))  # the card shows the approval meanwhile
    lifecycle.sweep(deps)
    request = access.get_request(uow=deps.uow, request_id=request_id)
    assert request.state is RequestState.REVOKED and not request.awaiting_delivery
    assert request.end_reason == recovery.UNDELIVERED
    assert len(broker(deps).revoked) == 1
    told = outcome_posts(deps)[before:]
    assert len(told) == 2 and all("never delivered" in post for post in told)
    assert lifecycle.sweep(deps) == 0 and len(outcome_posts(deps)) == before + 2


def test_an_outcome_recorded_but_not_shown_is_shown_once(deps: Deps, clock: Clock) -> None:
    _, request_id = filed(deps)
    approve(deps, request_id)
    before = len(outcome_posts(deps))
    clock.now += timedelta(minutes=31)
    expired = access.expire_access(  # the process expires it, then dies before Slack
        uow=deps.uow, broker=deps.broker, request_id=request_id, clock=clock
    )
    assert expired is not None
    lifecycle.sweep(deps)
    lifecycle.sweep(deps)
    shown = outcome_posts(deps)[before:]
    assert len(shown) == 2 and all("ended: it expired at" in post for post in shown)


def test_a_whole_lifecycle_leaves_nothing_to_recover(deps: Deps, clock: Clock) -> None:
    channel, request_id = filed(deps)
    approve(deps, request_id)
    _, revoked = filed(deps)
    approve(deps, revoked)
    workflows.revoke(deps, request_id=revoked, user="U0ONCALL2")
    clock.now += timedelta(minutes=31)
    lifecycle.sweep(deps)
    lifecycle.close_incident(deps, channel_id=channel, user="U0ONCALL1", resolution="done")
    calls = len(chat(deps).calls)
    assert lifecycle.sweep(deps) == 0
    assert len(chat(deps).calls) == calls
    assert recovery.undelivered_requests(uow=deps.uow) == []
    assert incidents.unfinished_closes(uow=deps.uow, policy=deps.policy, now=deps.clock()) == []


def test_a_close_cut_short_is_finished_by_the_sweep(deps: Deps, clock: Clock) -> None:
    channel, request_id = filed(deps)
    approve(deps, request_id)
    incident = incidents.find_incident_for_channel(uow=deps.uow, channel_id=channel)
    assert incident is not None
    incidents.close_incident(  # closed and revoked, then the process died before Slack
        uow=deps.uow,
        policy=deps.policy,
        broker=deps.broker,
        incident_id=incident.id,
        closed_by="U0ONCALL1",
        resolution="done",
        clock=clock,
    )
    before = len(chat(deps).calls)
    lifecycle.sweep(deps)
    methods = chat(deps).methods()[before:]
    assert methods[-3:] == ["chat.postMessage", "pins.add", "files.upload"]
    assert "chat.update" in methods  # the request's card shows the revocation
    assert state(deps, request_id) is RequestState.REVOKED
    clock.now += deps.policy.incident.archive_after  # the channel was left open till now
    lifecycle.sweep(deps)
    assert chat(deps).methods()[-1] == "conversations.archive"
    after = len(chat(deps).calls)
    lifecycle.sweep(deps)
    assert len(chat(deps).calls) == after  # one summary, one archive


def test_an_archive_slack_refused_is_retried_until_it_succeeds(deps: Deps, clock: Clock) -> None:
    channel, _ = filed(deps)
    chat(deps).failing.add("conversations.archive")
    lifecycle.close_incident(deps, channel_id=channel, user="U0ONCALL1", resolution="done")
    clock.now += deps.policy.incident.archive_after
    lifecycle.sweep(deps)
    assert "conversations.archive" not in chat(deps).methods()
    assert [
        i.archive_pending
        for i in incidents.unfinished_closes(uow=deps.uow, policy=deps.policy, now=deps.clock())
    ] == [True]
    chat(deps).failing.clear()
    lifecycle.sweep(deps)
    lifecycle.sweep(deps)
    assert chat(deps).methods().count("conversations.archive") == 1
    assert chat(deps).methods()[-1] == "conversations.archive"
    assert incidents.unfinished_closes(uow=deps.uow, policy=deps.policy, now=deps.clock()) == []


def test_expiry_timers_fire_once_at_the_latest_time_set() -> None:
    fired: list[tuple[str, float]] = []
    scheduler = build_scheduler([])
    timers = ExpiryTimers(scheduler, lambda request_id: fired.append((request_id, time.time())))
    now = datetime.now(UTC)
    timers.schedule_expiry("R-EXTENDED", now + timedelta(seconds=0.2))
    timers.schedule_expiry("R-EXTENDED", now + timedelta(seconds=0.5))  # its end changed
    timers.schedule_expiry("R-OVERDUE", now - timedelta(minutes=5))  # found at start-up
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while len(fired) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        scheduler.shutdown(wait=False)
    assert [request_id for request_id, _ in fired] == ["R-OVERDUE", "R-EXTENDED"]
    assert fired[1][1] >= (now + timedelta(seconds=0.5)).timestamp()


def test_a_delivered_credential_stays_when_only_the_card_update_failed(deps: Deps) -> None:
    _, request_id = filed(deps)
    chat(deps).failing.add("chat.update")  # Slack refuses the card update after the DM went out
    approve(deps, request_id)  # logged; what matters is what stays
    chat(deps).failing.clear()
    lifecycle.sweep(deps)
    request = access.get_request(uow=deps.uow, request_id=request_id)
    assert request.state is RequestState.ACTIVE and not request.awaiting_delivery
    assert broker(deps).revoked == []


def test_a_credential_slack_could_not_take_is_handed_over_once_it_answers(
    deps: Deps, clock: Clock
) -> None:
    _, request_id = filed(deps)
    pauses: list[float] = []

    def slack_back_after_two_pauses(seconds: float) -> None:
        pauses.append(seconds)
        clock.advance(seconds)
        if len(pauses) == 2:
            chat(deps).failing.clear()

    deps.sleep = slack_back_after_two_pauses
    chat(deps).failing.add("dm")  # the ephemeral went out; the DM did not
    approve(deps, request_id)
    assert pauses == [2.0, 4.0]
    assert chat(deps).methods().count("chat.postEphemeral") == 1
    credential_dms = [m for m in chat(deps).dms_to("U0ONCALL2") if "vault unwrap" in str(m)]
    assert len(credential_dms) == 1
    request = access.get_request(uow=deps.uow, request_id=request_id)
    assert request.state is RequestState.ACTIVE and not request.awaiting_delivery
    assert broker(deps).revoked == []


def test_a_credential_is_not_offered_again_once_its_access_ended(deps: Deps, clock: Clock) -> None:
    channel_id, request_id = filed(deps)

    def closed_meanwhile(seconds: float) -> None:
        clock.advance(seconds)
        incidents.close_incident(
            uow=deps.uow,
            policy=deps.policy,
            broker=deps.broker,
            incident_id=workflows.incident_of_channel(deps, channel_id).id,
            closed_by="U0ONCALL1",
            resolution="fixed",
            clock=deps.clock,
        )

    deps.sleep = closed_meanwhile
    chat(deps).failing.add("chat.postEphemeral")
    approve(deps, request_id)
    chat(deps).failing.clear()
    assert "chat.postEphemeral" not in chat(deps).methods()
    assert "dm" not in chat(deps).methods()
    assert state(deps, request_id) is RequestState.REVOKED


def test_a_credential_slack_never_took_before_its_wrapping_ended_is_given_up(
    deps: Deps, clock: Clock
) -> None:
    _, request_id = filed(deps)
    chat(deps).failing.add("chat.postEphemeral")
    started = clock.now
    with pytest.raises(ChatUnavailable):  # the approver is told; recovery tells the requester
        approve(deps, request_id)
    assert clock.now - started < timedelta(minutes=5)  # the wrapping token's life
    request = access.get_request(uow=deps.uow, request_id=request_id)
    assert request.awaiting_delivery  # never delivered: recovery ends this access
    chat(deps).failing.clear()
    lifecycle.sweep(deps)
    assert state(deps, request_id) is RequestState.REVOKED


def test_an_approval_whose_worker_never_issued_is_issued_by_the_sweep(
    deps: Deps, clock: Clock
) -> None:
    _, request_id = filed(deps)
    access.decide_request(  # approved; the worker dies before it asks Vault
        uow=deps.uow,
        request_id=request_id,
        approver_id="U0LEAD1",
        verdict=Verdict.APPROVE,
        reason=None,
        now=clock.now,
    )
    lifecycle.sweep(deps)
    assert state(deps, request_id) is RequestState.APPROVED  # its worker may still be at it
    clock.now += timedelta(seconds=15)
    lifecycle.sweep(deps)
    assert state(deps, request_id) is RequestState.ACTIVE
    assert any("vault unwrap" in json.dumps(args.get("blocks")) for _, args in chat(deps).calls)
