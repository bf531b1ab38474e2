"""What Slack sees of on-call auto-approval, failed lookups and group approvers, on fakes."""

import json
import time
from dataclasses import replace
from typing import Any

import pytest

from bot import metrics
from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState
from bot.domain.errors import ChatError, NotAllowed, OnCallUnavailable
from bot.domain.incident import Severity
from bot.services import access, eligibility
from bot.slack import ids
from tests.unit.example_policy import ML_PRIMARY, oncall_example_policy
from tests.unit.fakes import FakeBroker, FakeChat, FakeDirectory, FakeOnCall, MemoryStore
from tests.unit.slack.listening import Listeners, view_state


@pytest.fixture(autouse=True)
def platform_leads(deps: Deps) -> None:
    """The Slack user group of the example policy, with one member."""
    fakes(deps)[2].add_group("S0PLATLEAD", "platform-leads", ["U0PLAT1"])


def fakes(deps: Deps) -> tuple[FakeChat, FakeOnCall, FakeDirectory]:
    assert isinstance(deps.chat, FakeChat)
    assert isinstance(deps.oncall, FakeOnCall) and isinstance(deps.directory, FakeDirectory)
    return deps.chat, deps.oncall, deps.directory


def text_of(call: tuple[str, dict[str, Any]]) -> str:
    return str(call[1].get("text", "")) + json.dumps(call[1].get("blocks") or [])


def file(deps: Deps, resource: str = "inference-logs-ro", user: str = "U0ONCALL2") -> str:
    incident = workflows.open_incident(
        deps, title="Ranker latency", severity=Severity.SEV2, opener="U0ONCALL1"
    )
    before = len(fakes(deps)[0].calls)
    request_id = workflows.file_request(
        deps,
        channel_id=incident.channel_id,
        user=user,
        resource=resource,
        duration="1h",
        reason="x",
    )
    del fakes(deps)[0].calls[:before]
    return request_id


def test_auto_approval_posts_the_card_tells_the_approvers_and_delivers(deps: Deps) -> None:
    chat, oncall, _ = fakes(deps)
    oncall.put_on_call("U0ONCALL2", ML_PRIMARY)

    request_id = file(deps)

    assert chat.methods() == [
        "chat.postMessage",  # the card: approved automatically, and why
        "chat.postMessage",  # the approvers told in its thread
        "chat.postEphemeral",
        "chat.postMessage",  # the credential by DM (no tasks: nobody has to decide)
        "chat.update",  # the card: access active
        "chat.postMessage",  # the requester told in the thread
    ]
    card, told = text_of(chat.calls[0]), chat.calls[1][1]
    assert "Auto-approved:* on call in ml-primary (PagerDuty schedule P7ML0NC)" in card
    assert "gatehouse.approve" not in card
    assert told["thread_ts"] is not None
    assert "<@U0LEAD1>, <@U0LEAD2>, <@U0LEAD3>" in told["text"]
    assert f"/access revoke {request_id}" in told["text"]
    assert "vault unwrap" in text_of(chat.calls[3])
    assert access.get_request(uow=deps.uow, request_id=request_id).state is RequestState.ACTIVE


OPS = "C0OPS"


def with_ops_channel(deps: Deps) -> Deps:
    """`deps` whose policy names an operators' channel (the notifier built anew with it)."""
    policy = replace(deps.policy, incident=replace(deps.policy.incident, ops_channel=OPS))
    return replace(deps, policy=policy, follower=None)


def test_pagerduty_down_files_an_ordinary_request_and_says_so_plainly(deps: Deps) -> None:
    deps = with_ops_channel(deps)
    chat, oncall, _ = fakes(deps)
    oncall.put_on_call("U0ONCALL2", ML_PRIMARY)
    oncall.failure = OnCallUnavailable("PagerDuty did not answer within 3 s")
    failures = metrics.GROUP_LOOKUP_FAILURES.labels("pagerduty_schedule")
    counted = failures._value.get()

    request_id = file(deps)

    # the card, its note, the operators' details, then one task per approver (U0LEAD1-3)
    assert chat.methods() == ["chat.postMessage"] * 6
    assert "gatehouse.approve" in text_of(chat.calls[0])
    assert [args["channel"] for _, args in chat.calls[3:]] == ["DU0LEAD1", "DU0LEAD2", "DU0LEAD3"]
    note = chat.calls[1][1]
    assert note["thread_ts"] is not None
    assert note["text"] == "ℹ️ On-call could not be checked; approvers will decide."
    ops = chat.calls[2][1]  # the details, for the operators only
    assert ops["channel"] == OPS and ops.get("thread_ts") is None
    assert "ml-primary (PagerDuty schedule P7ML0NC) could not be looked up" in ops["text"]
    assert "PagerDuty did not answer within 3 s" in ops["text"] and request_id in ops["text"]
    assert failures._value.get() == counted + 1
    assert access.get_request(uow=deps.uow, request_id=request_id).state is RequestState.PENDING
    assert isinstance(deps.broker, FakeBroker) and deps.broker.issued == []


def test_the_card_names_a_slack_user_group_by_handle_and_the_commander(deps: Deps) -> None:
    chat, _, _ = fakes(deps)

    file(deps, "serving-cluster-exec")

    card = text_of(chat.calls[0])
    # The card mentions no approver (notify: tasks): it names the groups they come from...
    assert "5 people from `ml-leads`, `platform-leads`" in card
    assert "<@U0PLAT1>" not in card and "<@U0LEAD1>" not in card
    # ...and each of them, the group's members and the commander included, gets a task.
    tasks = {args["channel"] for _, args in chat.calls[1:]}
    assert tasks == {"DU0PLAT1", "DU0ONCALL1", "DU0LEAD1", "DU0LEAD2", "DU0LEAD3"}
    assert chat.methods() == ["chat.postMessage"] * 6  # every lookup worked: no note


def test_a_user_group_slack_cannot_read_is_noted_in_the_thread(deps: Deps) -> None:
    chat, _, directory = fakes(deps)
    directory.failure = ChatError("Slack refused usergroups.users.list: ratelimited")

    file(deps, "serving-cluster-exec")

    # the card, its note, then one task per approver Slack could tell (the leads, the
    # commander); no operators' channel: the log has it
    assert chat.methods() == ["chat.postMessage"] * 6
    tasks = {args["channel"] for _, args in chat.calls[2:]}
    assert tasks == {"DU0ONCALL1", "DU0LEAD1", "DU0LEAD2", "DU0LEAD3"}
    note = chat.calls[1][1]["text"]
    assert note == ("ℹ️ Some approver groups could not be checked; the other approvers will decide.")


def test_a_refusal_mentions_the_lookups_that_failed(deps: Deps) -> None:
    policy = oncall_example_policy()
    rule = policy.resource("inference-logs-ro")
    deps.policy = replace(
        policy,
        resources={**policy.resources, rule.name: replace(rule, requester_groups=("ml-primary",))},
    )
    _, oncall, _ = fakes(deps)
    oncall.failure = OnCallUnavailable("PagerDuty refused the API key (401)")

    with pytest.raises(NotAllowed) as refused:
        file(deps)

    assert "Only members of ml-primary" in refused.value.message
    assert "Some groups could not be checked just now" in refused.value.message
    assert "401" not in refused.value.message  # the details are the operators'


def _slow_pagerduty(deps: Deps, monkeypatch: pytest.MonkeyPatch) -> str:
    """PagerDuty answering in 2 s, a budget of 0.2 s, and an incident channel."""
    _, oncall, _ = fakes(deps)
    oncall.put_on_call("U0ONCALL2", ML_PRIMARY)  # in time, this would auto-approve
    oncall.delay = 2.0
    monkeypatch.setattr(workflows, "LOOKUP_BUDGET_SECONDS", 0.2)
    incident = workflows.open_incident(
        deps, title="Ranker latency", severity=Severity.SEV2, opener="U0ONCALL1"
    )
    return incident.channel_id


def test_a_slow_pagerduty_is_given_up_on_and_the_request_filed_before_the_ack(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = _slow_pagerduty(deps, monkeypatch)
    chat = fakes(deps)[0]
    before = len(chat.calls)

    started = time.monotonic()
    said = Listeners(deps).run_command(
        "/request-access", "inference-logs-ro 1h p99", channel=channel, ack_only=True
    )

    assert time.monotonic() - started < 1.0
    assert said.acks == [{}]
    assert isinstance(deps.uow, MemoryStore)
    (request,) = deps.uow.state.requests.values()
    assert request.state is RequestState.PENDING and request.id not in deps.uow.state.request_cards
    assert chat.calls[before:] == []  # nothing asked of Slack before the answer


def test_a_lookup_over_the_budget_is_noted_in_the_thread(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = _slow_pagerduty(deps, monkeypatch)
    chat = fakes(deps)[0]
    before = len(chat.calls)

    Listeners(deps).run_command("/request-access", "inference-logs-ro 1h p99", channel=channel)

    assert chat.methods()[before:] == ["chat.postMessage"] * 5  # card, note, three tasks
    note = chat.calls[before + 1][1]
    assert note["thread_ts"] is not None
    assert note["text"] == "ℹ️ On-call could not be checked; approvers will decide."
    assert isinstance(deps.uow, MemoryStore)
    (request,) = deps.uow.state.requests.values()
    assert request.state is RequestState.PENDING


def test_lookups_within_the_budget_count_as_usual(deps: Deps) -> None:
    _, oncall, _ = fakes(deps)
    oncall.put_on_call("U0ONCALL2", ML_PRIMARY)
    oncall.delay = 0.05
    found = eligibility.resolve_groups(
        policy=deps.policy,
        rule=deps.policy.resource("inference-logs-ro"),
        requester_id="U0ONCALL2",
        directory=deps.directory,
        oncall=deps.oncall,
        budget=1.5,
    )
    assert found.notes == () and found.shift is not None


def test_the_request_form_files_a_resource_with_lookups_before_it_closes(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = _slow_pagerduty(deps, monkeypatch)
    chat = fakes(deps)[0]
    before = len(chat.calls)
    form = view_state(
        {
            ids.RESOURCE_BLOCK: {
                ids.RESOURCE_INPUT: {"selected_option": {"value": "inference-logs-ro"}}
            },
            ids.REASON_BLOCK: {ids.REASON_INPUT: {"value": "p99 spikes"}},
        },
        metadata=channel,
    )

    submitted = Listeners(deps).submit(
        ids.REQUEST_ACCESS_VIEW, form, user="U0ONCALL2", ack_only=True
    )

    assert submitted.acks == [{}]
    assert isinstance(deps.uow, MemoryStore)
    (request,) = deps.uow.state.requests.values()
    assert request.state is RequestState.PENDING and request.resource == "inference-logs-ro"
    assert chat.calls[before:] == []
