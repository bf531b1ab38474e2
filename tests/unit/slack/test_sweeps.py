"""The periodic sweep as people see it in Slack, and the scheduler that triggers it."""

import json
import threading
from datetime import timedelta

from bot.app import lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState, Verdict
from bot.domain.errors import CredentialUnavailable
from bot.domain.grant import GrantStatus
from bot.scheduler import Job, build_scheduler
from tests.unit.slack.scene import Clock, broker, chat, filed, state


def test_access_expires_on_the_sweep_after_its_end(deps: Deps, clock: Clock) -> None:
    _, request_id = filed(deps)
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    clock.now += timedelta(minutes=29)
    assert lifecycle.sweep(deps) == 1  # only the requester's warning that it ends soon
    clock.now += timedelta(minutes=2)
    assert lifecycle.sweep(deps) == 1
    assert state(deps, request_id) is RequestState.EXPIRED
    assert broker(deps).live == {}
    assert "ended: it expired at" in json.dumps(chat(deps).calls[-2][1]["blocks"])
    assert lifecycle.sweep(deps) == 0  # nothing twice


def test_undecided_requests_time_out(deps: Deps, clock: Clock) -> None:
    _, request_id = filed(deps)
    clock.now += timedelta(minutes=31)
    lifecycle.sweep(deps)
    assert state(deps, request_id) is RequestState.TIMED_OUT
    assert "timed out: nobody decided within 30m" in json.dumps(chat(deps).calls[-2][1]["blocks"])


def test_an_issue_vault_refused_is_delivered_when_vault_returns(deps: Deps, clock: Clock) -> None:
    channel, request_id = filed(deps)
    broker(deps).fail_issue = CredentialUnavailable("Vault is unavailable.")
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    assert "Vault is unavailable right now" in chat(deps).calls[-1][1]["text"]
    broker(deps).fail_issue = None
    clock.now += timedelta(seconds=20)
    lifecycle.sweep(deps)
    assert state(deps, request_id) is RequestState.ACTIVE
    delivered = [args for method, args in chat(deps).calls if method == "chat.postEphemeral"]
    assert len(delivered) == 1 and delivered[0]["channel"] == channel


def test_the_sweep_offers_a_credential_to_slack_once_and_goes_on(deps: Deps, clock: Clock) -> None:
    _, request_id = filed(deps)
    broker(deps).fail_issue = CredentialUnavailable("Vault is unavailable.")
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    broker(deps).fail_issue = None
    pauses: list[float] = []
    deps.sleep = pauses.append
    chat(deps).failing.add("chat.postEphemeral")  # Slack down when the sweep issues it
    clock.now += timedelta(seconds=20)
    lifecycle.sweep(deps)
    assert pauses == []  # the sweep does not wait for Slack
    assert state(deps, request_id) is RequestState.REVOKED  # never delivered: ended, and told
    assert len(broker(deps).revoked) == 1


def test_unconfirmed_revocations_are_retried_until_vault_confirms(deps: Deps, clock: Clock) -> None:
    channel, request_id = filed(deps)
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    broker(deps).fail_revoke = True
    lifecycle.close_incident(deps, channel_id=channel, user="U0ONCALL1", resolution="done")
    with deps.uow() as tx:
        assert [g.status for g in tx.grants.list_by_status([GrantStatus.REVOKING], 10)]
    broker(deps).fail_revoke = False
    clock.now += timedelta(seconds=15)  # the first retry waits 15 s
    assert lifecycle.sweep(deps) == 1
    with deps.uow() as tx:
        assert tx.grants.list_by_status([GrantStatus.REVOKING], 10) == []
        assert tx.vault_tokens.list_unrevoked() == []


def test_the_scheduler_runs_jobs_on_their_interval_and_survives_a_failing_one() -> None:
    ran = threading.Event()
    runs: list[str] = []

    def good() -> None:
        runs.append("good")
        if runs.count("good") >= 2:
            ran.set()

    def bad() -> None:
        raise RuntimeError("boom")

    scheduler = build_scheduler([Job("good", good, 0.05), Job("bad", bad, 0.05)])
    assert {job.id for job in scheduler.get_jobs()} == {"good", "bad"}
    scheduler.start()
    try:
        assert ran.wait(timeout=5)  # the good job kept running beside the failing one
    finally:
        scheduler.shutdown(wait=False)


def test_approvers_are_reminded_once_in_the_thread(deps: Deps, clock: Clock) -> None:
    _, request_id = filed(deps)
    clock.now += timedelta(minutes=9)
    lifecycle.sweep(deps)
    assert not any("⏰" in args.get("text", "") for _, args in chat(deps).calls)
    clock.now += timedelta(minutes=2)
    lifecycle.sweep(deps)
    lifecycle.sweep(deps)
    reminders = [args for _, args in chat(deps).calls if "⏰" in args.get("text", "")]
    in_thread = [r for r in reminders if r.get("thread_ts")]
    assert len(in_thread) == 1  # the thread notes it once, mentioning nobody
    assert "<@" not in in_thread[0]["text"] and "still waiting" in in_thread[0]["text"]
    # each approver who has not decided is reminded once, privately, with the buttons
    private = [r for r in reminders if not r.get("thread_ts")]
    assert sorted(r["channel"] for r in private) == ["DU0LEAD1", "DU0LEAD2", "DU0LEAD3"]
    assert all("gatehouse.approve" in json.dumps(r["blocks"]) for r in private)
    assert all("inference-logs-ro" in json.dumps(r["blocks"]) for r in private)
    assert state(deps, request_id) is RequestState.PENDING
