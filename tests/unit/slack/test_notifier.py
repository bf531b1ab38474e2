"""The Slack notifier follows the audit chain: each outcome told once, whatever stops it."""

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState, Verdict
from bot.domain.audit import AuditEntry, next_in_chain
from bot.services import access, event_stream
from tests.unit.fakes import MemoryStore
from tests.unit.slack.scene import T0, Clock, approve, chat, filed, state


class Stopped(BaseException):
    """The process dies here (a SIGKILL in production): nothing after it runs."""


def replies(deps: Deps, words: str) -> list[str]:
    return [
        args["text"]
        for method, args in chat(deps).calls
        if method == "chat.postMessage" and args.get("thread_ts") and words in args["text"]
    ]


def cards(deps: Deps, channel: str) -> list[str]:
    return [
        args["text"]
        for method, args in chat(deps).calls
        if method == "chat.postMessage"
        and args["channel"] == channel
        and not args.get("thread_ts")
        and "asks for" in args["text"]
    ]


def restarted(deps: Deps) -> Deps:
    """The same database and Slack, a new process: a follower with no memory."""
    return replace(deps, follower=None)


def deny(deps: Deps, request_id: str) -> None:
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.DENY, reason="no"
    )


def test_a_reply_posted_just_before_a_stop_is_not_posted_again(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, request_id = filed(deps)

    def die(name: str) -> None:
        if name == "notify.posted":
            raise Stopped

    monkeypatch.setattr(event_stream, "crash_point", die)
    with pytest.raises(Stopped):
        deny(deps, request_id)  # the reply went out; the cursor was not saved
    assert len(replies(deps, "denied the request")) == 1
    monkeypatch.undo()
    again = restarted(deps)
    again.notify()
    again.notify()
    assert len(replies(deps, "denied the request")) == 1
    dms = [
        a for m, a in chat(deps).calls if m == "chat.postMessage" and a["channel"] == "DU0ONCALL2"
    ]
    assert len(dms) == 1  # the requester's DM too was not posted again
    looked = [m for m, _ in chat(deps).calls if m == "conversations.replies"]
    assert len(looked) == 2  # only the posts in doubt (that event's reply and DM) were looked for


def test_a_card_posted_before_a_stop_is_found_and_kept_not_posted_again(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(**_: object) -> None:
        raise Stopped

    channel, first = filed(deps)  # a holder exists: the next process is in doubt
    monkeypatch.setattr(access, "attach_request_card", die)
    with pytest.raises(Stopped):
        workflows.file_request(
            deps,
            channel_id=channel,
            user="U0ONCALL2",
            resource="inference-logs-ro",
            duration="30m",
            reason="drift again",
        )
    monkeypatch.undo()
    (second,) = [r for r in request_ids(deps) if r != first]
    assert access.request_card(uow=deps.uow, request_id=second) is None
    restarted(deps).notify()
    assert len(cards(deps, channel)) == 2  # one per request, none twice
    assert access.request_card(uow=deps.uow, request_id=second) is not None


def test_a_new_follower_with_nobody_before_it_looks_nothing_up(deps: Deps) -> None:
    _, request_id = filed(deps)
    deny(deps, request_id)
    assert [m for m, _ in chat(deps).calls if m == "conversations.replies"] == []


def test_slack_unavailable_pauses_the_stream_and_it_resumes_in_order(
    deps: Deps, clock: Clock
) -> None:
    channel, first = filed(deps)
    chat(deps).failing = {"chat.postMessage", "chat.update"}
    deny(deps, first)
    _, second = filed_in(deps, channel)
    assert replies(deps, "denied the request") == [] and state(deps, first) is RequestState.DENIED
    chat(deps).failing = set()
    deps.notify()  # still pausing: the first pause is 2 s
    assert replies(deps, "denied the request") == []
    clock.now += timedelta(seconds=3)
    deps.notify()
    assert len(replies(deps, "denied the request")) == 1
    assert len(cards(deps, channel)) == 2
    assert access.request_card(uow=deps.uow, request_id=second) is not None
    order = [
        args.get("thread_ts") or "card"
        for method, args in chat(deps).calls
        if method == "chat.postMessage"
    ]
    assert order.index("card", 1) > 0  # the deny (earlier) came before the second card


def test_a_refused_message_is_passed_and_the_rest_goes_on(deps: Deps) -> None:
    channel, first = filed(deps)
    chat(deps).refusing = {"chat.update"}  # e.g. the card was deleted
    deny(deps, first)
    chat(deps).refusing = set()
    assert len(replies(deps, "denied the request")) == 1
    filed_in(deps, channel)
    assert len(cards(deps, channel)) == 2


def test_several_followers_at_once_tell_each_outcome_once(deps: Deps) -> None:
    channel, _ = filed(deps)
    ids = [filed_in(deps, channel)[1] for _ in range(6)]
    for request_id in ids[:3]:
        deny(deps, request_id)
    for request_id in ids[3:]:
        approve(deps, request_id)
    followers = [restarted(deps) for _ in range(3)]
    threads = [threading.Thread(target=f.notify, kwargs={"wait": True}) for f in followers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies(deps, "denied the request")) == 3
    assert len(replies(deps, "sent to the requester by DM")) == 3


def filed_in(deps: Deps, channel: str) -> tuple[str, str]:
    request_id = workflows.file_request(
        deps,
        channel_id=channel,
        user="U0ONCALL2",
        resource="inference-logs-ro",
        duration="30m",
        reason="drift",
    )
    return channel, request_id


def request_ids(deps: Deps) -> list[str]:
    assert isinstance(deps.uow, MemoryStore)
    return list(deps.uow.state.requests)


def test_an_event_this_release_cannot_type_is_passed_over(deps: Deps) -> None:
    """A newer release's action (say, during a rollback) must not stop the stream."""
    _, first = filed(deps)
    assert isinstance(deps.uow, MemoryStore)
    events = deps.uow.state.events
    entry = AuditEntry(action="request.something_new", at=T0, request_id=first)
    events.append(next_in_chain(entry, events[-1] if events else None))
    deny(deps, first)
    assert len(replies(deps, "denied the request")) == 1
