"""What the answer to Slack confirms is committed before it: each test stops where a process
killed right after the ack would have stopped, and finds the change in the store, with nothing
asked of Slack or Vault in the ack. A database failure in the ack promises nothing."""

from datetime import timedelta

import pytest

from bot.app import extending, lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState
from bot.domain.eligibility import Resolution
from bot.domain.extension import ExtensionState
from bot.domain.grant import GrantStatus
from bot.domain.incident import Severity
from bot.services import access
from bot.slack import ids
from tests.unit.fakes import MemoryStore
from tests.unit.slack.listening import Listeners, view_state
from tests.unit.slack.scene import Clock, approve, broker, chat, filed, state


def test_an_approve_click_is_committed_before_its_ack_and_issued_after(deps: Deps) -> None:
    channel, request_id = filed(deps)
    calls = len(chat(deps).calls)
    listeners = Listeners(deps)
    listeners.click(ids.APPROVE, request_id, user="U0LEAD1", channel=channel, ack_only=True)
    assert state(deps, request_id) is RequestState.APPROVED
    assert chat(deps).calls[calls:] == [] and broker(deps).issued == []
    workflows.issue_and_deliver(deps, request_id=request_id)  # as the sweep does after a stop
    assert state(deps, request_id) is RequestState.ACTIVE


def test_the_work_after_an_approve_click_issues_once(deps: Deps) -> None:
    channel, request_id = filed(deps)
    Listeners(deps).click(ids.APPROVE, request_id, user="U0LEAD1", channel=channel)
    assert state(deps, request_id) is RequestState.ACTIVE
    assert broker(deps).issued == [request_id]


def test_a_refused_approve_is_told_to_the_clicker_after_the_ack(deps: Deps) -> None:
    channel, request_id = filed(deps)
    Listeners(deps).click(ids.APPROVE, request_id, user="U0ONCALL2", channel=channel)
    assert state(deps, request_id) is RequestState.PENDING
    method, told = chat(deps).calls[-1]
    assert method == "chat.postEphemeral" and told["user"] == "U0ONCALL2"


def test_a_database_failure_in_the_ack_records_nothing_and_says_so(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, request_id = filed(deps)

    def database_gone(**_: object) -> None:
        raise ConnectionError("database gone")

    monkeypatch.setattr(access, "decide_request", database_gone)
    Listeners(deps).click(ids.APPROVE, request_id, user="U0LEAD1", channel=channel)
    assert state(deps, request_id) is RequestState.PENDING and broker(deps).issued == []
    method, told = chat(deps).calls[-1]
    assert method == "chat.postEphemeral" and told["user"] == "U0LEAD1"
    assert "nothing was changed" in told["text"]


def test_a_deny_is_committed_before_the_form_closes(deps: Deps) -> None:
    _, request_id = filed(deps)
    calls = len(chat(deps).calls)
    form = view_state(
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"value": "not now"}}},
        metadata=f"{request_id}|",
    )
    submitted = Listeners(deps).submit(ids.DENY_REASON_VIEW, form, user="U0LEAD1", ack_only=True)
    assert submitted.acks == [{}]
    assert state(deps, request_id) is RequestState.DENIED
    assert chat(deps).calls[calls:] == []


def test_a_deny_the_database_cannot_record_keeps_the_form_open(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, request_id = filed(deps)

    def database_gone(**_: object) -> None:
        raise ConnectionError("database gone")

    monkeypatch.setattr(access, "decide_request", database_gone)
    form = view_state(
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"value": "not now"}}},
        metadata=f"{request_id}|",
    )
    submitted = Listeners(deps).submit(ids.DENY_REASON_VIEW, form, user="U0LEAD1")
    assert "nothing was changed" in submitted.form_errors[ids.DENY_REASON_BLOCK]
    assert state(deps, request_id) is RequestState.PENDING


def test_an_extension_approval_is_committed_before_its_ack(deps: Deps) -> None:
    channel, request_id = filed(deps)
    approve(deps, request_id)
    extending.ask(deps, request_id=request_id, user="U0ONCALL2", duration="30m", reason="more")
    calls, renewed = len(chat(deps).calls), list(broker(deps).renewed)
    Listeners(deps).click(
        ids.EXTEND_APPROVE, request_id, user="U0LEAD1", channel=channel, ack_only=True
    )
    (extension,) = access.get_request(uow=deps.uow, request_id=request_id).extensions
    assert extension.state is ExtensionState.APPROVED
    assert chat(deps).calls[calls:] == [] and broker(deps).renewed == renewed


def test_a_cancel_is_committed_before_the_answer_that_confirms_it(deps: Deps) -> None:
    channel, request_id = filed(deps)
    calls = len(chat(deps).calls)
    said = Listeners(deps).run_command(
        "/access", f"cancel {request_id.lower()}", channel=channel, ack_only=True
    )
    assert said.acks == [{"text": f"Cancelled {request_id}."}]
    assert state(deps, request_id) is RequestState.CANCELLED
    assert chat(deps).calls[calls:] == []


def test_a_cancel_the_database_cannot_record_is_not_confirmed(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, request_id = filed(deps)

    def database_gone(**_: object) -> None:
        raise ConnectionError("database gone")

    monkeypatch.setattr(access, "cancel_request", database_gone)
    said = Listeners(deps).run_command("/access", f"cancel {request_id}", channel=channel)
    assert "nothing was changed" in said.text and "Cancelled" not in said.text
    assert state(deps, request_id) is RequestState.PENDING


def test_a_revoke_is_committed_before_its_answer_and_vault_asked_after(deps: Deps) -> None:
    channel, request_id = filed(deps)
    approve(deps, request_id)
    listeners = Listeners(deps)
    said = listeners.run_command(
        "/access", f"revoke {request_id}", user="U0LEAD3", channel=channel, ack_only=True
    )
    assert said.acks == [{"text": f"Revoked {request_id}."}]
    assert state(deps, request_id) is RequestState.REVOKED
    with deps.uow() as tx:
        grant = tx.grants.get_for_request(request_id)
    assert grant is not None and grant.status is GrantStatus.REVOKING
    assert broker(deps).revoked == []


def test_the_work_after_a_revoke_asks_vault_and_announces_once(deps: Deps) -> None:
    channel, request_id = filed(deps)
    approve(deps, request_id)
    Listeners(deps).run_command("/access", f"revoke {request_id}", user="U0LEAD3", channel=channel)
    with deps.uow() as tx:
        grant = tx.grants.get_for_request(request_id)
        request = tx.requests.get(request_id)
    assert grant is not None and grant.status is GrantStatus.REVOKED
    assert request is not None and not request.awaiting_delivery
    replies = [a for m, a in chat(deps).calls if m == "chat.postMessage" and a.get("thread_ts")]
    assert len([a for a in replies if "revoked" in a["text"].lower()]) == 1


def store(deps: Deps) -> MemoryStore:
    assert isinstance(deps.uow, MemoryStore)
    return deps.uow


def _incident_channel(deps: Deps) -> str:
    incident = workflows.open_incident(
        deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1"
    )
    return incident.channel_id


def _cards(deps: Deps, channel: str) -> list[str]:
    return [
        str(args["blocks"])
        for method, args in chat(deps).calls
        if method == "chat.postMessage"
        and args["channel"] == channel
        and args.get("blocks")
        and "gatehouse.approve" in str(args["blocks"])
    ]


def test_a_request_is_filed_before_its_ack(deps: Deps) -> None:
    channel = _incident_channel(deps)
    calls = len(chat(deps).calls)
    said = Listeners(deps).run_command(
        "/request-access", "feature-store-rw 30m backfill", channel=channel, ack_only=True
    )
    assert said.acks == [{}]
    (request,) = store(deps).state.requests.values()
    assert request.resource == "feature-store-rw" and card_of(deps, request.id) is None
    assert chat(deps).calls[calls:] == []


def test_the_timer_posts_a_card_its_filing_never_posted_once(deps: Deps, clock: Clock) -> None:
    channel = _incident_channel(deps)
    Listeners(deps).run_command(
        "/request-access", "feature-store-rw 30m backfill", channel=channel, ack_only=True
    )
    assert _cards(deps, channel) == []  # the filing stopped before its work after the ack
    lifecycle.sweep(deps)
    lifecycle.sweep(deps)
    (request,) = store(deps).state.requests.values()
    assert len(_cards(deps, channel)) == 1 and card_of(deps, request.id) is not None
    workflows.after_filing(deps, workflows.Filed(request, Resolution()))  # the worker, late
    assert len(_cards(deps, channel)) == 1


def test_slack_failing_after_filing_tells_the_requester_it_is_filed(
    deps: Deps, clock: Clock
) -> None:
    channel = _incident_channel(deps)
    chat(deps).failing = {"chat.postMessage"}
    said = Listeners(deps).run_command(
        "/request-access", "feature-store-rw 30m backfill", channel=channel
    )
    (request,) = store(deps).state.requests.values()
    assert said.acks == [{}]
    assert [r["text"] for r in said.responses] == [
        f"Filed {request.id}; its card will appear here when Slack answers."
    ]
    chat(deps).failing = set()
    clock.now += timedelta(seconds=3)  # the notifier's first pause after a failure: 2 s
    lifecycle.sweep(deps)
    assert len(_cards(deps, channel)) == 1


def _card_of(deps: Deps, request_id: str) -> str:
    request = access.get_request(uow=deps.uow, request_id=request_id)
    updates = [
        str(args["blocks"])
        for method, args in chat(deps).calls
        if method in ("chat.update", "chat.postMessage")
        and args.get("ts") == card_of(deps, request.id)
    ]
    return updates[-1] if updates else ""


def _told(deps: Deps, words: str) -> int:
    return len(
        [
            args
            for method, args in chat(deps).calls
            if method == "chat.postMessage" and args.get("thread_ts") and words in args["text"]
        ]
    )


def test_a_deny_committed_before_a_stop_is_shown_by_recovery_once(deps: Deps) -> None:
    _, request_id = filed(deps)
    form = view_state(
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"value": "not now"}}},
        metadata=f"{request_id}|",
    )
    Listeners(deps).submit(ids.DENY_REASON_VIEW, form, user="U0LEAD1", ack_only=True)
    lifecycle.sweep(deps)
    lifecycle.sweep(deps)
    assert "denied" in _card_of(deps, request_id) and "gatehouse.approve" not in _card_of(
        deps, request_id
    )
    assert _told(deps, "denied") == 1


def test_a_deny_is_announced_once_by_its_own_worker(deps: Deps) -> None:
    _, request_id = filed(deps)
    form = view_state(
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"value": "not now"}}},
        metadata=f"{request_id}|",
    )
    Listeners(deps).submit(ids.DENY_REASON_VIEW, form, user="U0LEAD1")
    lifecycle.sweep(deps)
    assert _told(deps, "denied") == 1


def test_a_cancel_committed_before_a_stop_is_shown_by_recovery(deps: Deps) -> None:
    channel, request_id = filed(deps)
    Listeners(deps).run_command("/access", f"cancel {request_id}", channel=channel, ack_only=True)
    lifecycle.sweep(deps)
    assert "cancelled their request" in _card_of(deps, request_id)
    assert "gatehouse.approve" not in _card_of(deps, request_id)


def card_of(deps: Deps, request_id: str) -> str | None:
    return access.request_card(uow=deps.uow, request_id=request_id)
