"""The Slack workflows on fakes: which messages go where, in which order."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bot.app import lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState, Verdict
from bot.domain.errors import ClaimLost, NotAllowed
from bot.domain.incident import Severity
from bot.services import access, incidents
from bot.services.common import claim_key
from bot.slack.blocks.access import my_access
from bot.slack.listeners.home import publish
from bot.store import claims
from tests.unit.fakes import FakeBroker, FakeChat
from tests.unit.slack.scene import Clock

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def chat(deps: Deps) -> FakeChat:
    assert isinstance(deps.chat, FakeChat)
    return deps.chat


def text_of(call: tuple[str, dict[str, Any]]) -> str:
    return str(call[1].get("text", "")) + json.dumps(call[1].get("blocks") or [])


def posts(deps: Deps) -> list[str]:
    return [text_of(call) for call in chat(deps).calls if call[0] == "chat.postMessage"]


def test_opening_takes_the_next_free_name_and_pins_the_card(deps: Deps) -> None:
    chat(deps).taken = {"inc-20261123-ranker-latency", "inc-20261123-ranker-latency-2"}
    incident = workflows.open_incident(
        deps, title="Ranker latency!", severity=Severity.SEV1, opener="U0ONCALL1"
    )
    assert incident.channel_name == "inc-20261123-ranker-latency-3"
    assert chat(deps).methods() == [
        "conversations.create",
        "conversations.create",
        "conversations.create",
        "conversations.invite",
        "conversations.setTopic",
        "chat.postMessage",
        "pins.add",
    ]
    topic = chat(deps).calls[4][1]["topic"]
    assert topic == "Commander: <@U0ONCALL1> · SEV1 · Open"


def open_and_request(deps: Deps, resource: str = "inference-logs-ro") -> tuple[str, str]:
    incident = workflows.open_incident(
        deps, title="Ranker latency", severity=Severity.SEV2, opener="U0ONCALL1"
    )
    request_id = workflows.file_request(
        deps,
        channel_id=incident.channel_id,
        user="U0ONCALL2",
        resource=resource,
        duration="1h",
        reason="<!channel> look at <http://evil|this> & that",
    )
    return incident.channel_id, request_id


def test_the_card_escapes_user_text_and_shows_who_can_approve(deps: Deps) -> None:
    _, request_id = open_and_request(deps)
    card = next(c for c in chat(deps).calls if "gatehouse.approve" in text_of(c))
    rendered = text_of(card)
    assert "<!channel>" not in rendered and "<http://evil" not in rendered
    assert "&lt;!channel&gt; look at &lt;http://evil|this&gt; &amp; that" in rendered
    assert "gatehouse.approve" in rendered and "gatehouse.deny" in rendered
    assert access.request_card(uow=deps.uow, request_id=request_id) is not None
    # who can approve: the card names their group and mentions none of them; each has a task
    card_post = next(c for c in chat(deps).calls if "gatehouse.approve" in text_of(c))
    assert "3 people from `ml-leads`" in text_of(card_post) and "<@U0LEAD" not in text_of(card_post)
    assert [c[1]["channel"] for c in chat(deps).calls[-3:]] == ["DU0LEAD1", "DU0LEAD2", "DU0LEAD3"]
    for task in chat(deps).calls[-3:]:
        assert "&lt;!channel&gt; look at &lt;http://evil|this&gt; &amp; that" in text_of(task)
        assert "gatehouse.approve" in text_of(task) and "gatehouse.deny" in text_of(task)


def test_approval_updates_the_card_delivers_privately_and_tells_the_thread(deps: Deps) -> None:
    channel, request_id = open_and_request(deps)
    before = len(chat(deps).calls)
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    everything = chat(deps).calls[before:]
    tasks = [c for c in everything if c[0] == "chat.update" and c[1]["channel"].startswith("DU")]
    calls = [c for c in everything if c not in tasks]
    # the credential first (nothing in Slack stands between the click and it), then the card
    assert [m for m, _ in calls] == [
        "chat.postEphemeral",
        "chat.postMessage",  # the credential by DM
        "chat.update",
        "chat.postMessage",
    ]
    # each approver's task redrawn once: decided, by whom, and without buttons
    assert sorted(c[1]["channel"] for c in tasks) == ["DU0LEAD1", "DU0LEAD2", "DU0LEAD3"]
    for task in tasks:
        assert "gatehouse.approve" not in text_of(task)
        assert "Approved by <@U0LEAD1>" in text_of(task)
    ephemeral, dm = calls[0], calls[1]
    assert ephemeral[1]["user"] == "U0ONCALL2" and ephemeral[1]["channel"] == channel
    assert "VAULT_ADDR=https://vault.example:8200 VAULT_TOKEN=hvs.wrap" in text_of(ephemeral)
    assert "vault unwrap" in text_of(dm)
    final_card = text_of(calls[2])
    assert "is active until" in final_card and "gatehouse.approve" not in final_card
    told = calls[3][1]
    assert told["thread_ts"] is not None and "sent to the requester by DM" in told["text"]
    assert "<@U0ONCALL2>" not in told["text"]  # the DM tells them: the thread does not ping
    # the secret never goes to the channel itself
    for method, args in chat(deps).calls:
        if method in ("chat.postMessage", "chat.update") and args["channel"] != "DU0ONCALL2":
            assert "hvs.wrap" not in text_of((method, args))


def test_a_second_click_by_the_same_approver_is_refused_and_issues_nothing(deps: Deps) -> None:
    _, request_id = open_and_request(deps, "feature-store-rw")
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    with pytest.raises(Exception, match="already approved"):
        workflows.decide(
            deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
        )
    with pytest.raises(NotAllowed):
        workflows.decide(
            deps, request_id=request_id, approver="U0ONCALL2", verdict=Verdict.APPROVE, reason=None
        )
    assert isinstance(deps.broker, FakeBroker) and deps.broker.issued == []


def test_deny_ends_the_card_and_tells_the_requester(deps: Deps) -> None:
    _, request_id = open_and_request(deps)
    workflows.decide(
        deps,
        request_id=request_id,
        approver="U0LEAD2",
        verdict=Verdict.DENY,
        reason="use the replica",
    )
    assert access.get_request(uow=deps.uow, request_id=request_id).state is RequestState.DENIED
    in_channel = [c for c in chat(deps).calls if not c[1].get("channel", "").startswith("D")]
    assert "<@U0LEAD2> denied the request: use the replica" in text_of(in_channel[-2])
    assert in_channel[-1][1]["thread_ts"] is not None
    # and the requester hears it privately, with the reason
    (told,) = [c for c in chat(deps).calls if c[1].get("channel") == "DU0ONCALL2"]
    assert (
        "<@U0LEAD2> denied your request for `inference-logs-ro` (1h): use the replica"
        in (told[1]["text"])
    )


def archiving_at_once(deps: Deps) -> None:
    deps.policy = replace(
        deps.policy, incident=replace(deps.policy.incident, archive_after=timedelta(0))
    )


def test_close_posts_the_summary_pins_uploads_and_archives_last(deps: Deps) -> None:
    archiving_at_once(deps)
    channel, request_id = open_and_request(deps)
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    before = len(chat(deps).calls)
    lifecycle.close_incident(deps, channel_id=channel, user="U0ONCALL1", resolution="rolled back")
    methods = chat(deps).methods()[before:]
    assert methods[-4:] == ["chat.postMessage", "pins.add", "files.upload", "conversations.archive"]
    summary = text_of(chat(deps).calls[before + methods.index("chat.postMessage")])
    assert request_id in summary and "revoked" in summary and "archived now" in summary
    assert "Chain head" not in summary and "gatehouse audit" not in summary  # in the report
    upload = chat(deps).calls[-2][1]
    assert upload["filename"].endswith("-audit.md") and "Chain head" in upload["content"]
    assert "gatehouse audit verify --anchor " in upload["content"]


def test_the_channel_stays_open_archive_after_then_the_sweep_archives_it(
    deps: Deps, clock: Clock
) -> None:
    channel, _ = open_and_request(deps)
    lifecycle.close_incident(deps, channel_id=channel, user="U0ONCALL1", resolution="done")
    summary = next(text for text in posts(deps) if "closed" in text and "Duration" in text)
    assert "stays open for 1d, then is archived" in summary
    clock.now += timedelta(hours=23)
    lifecycle.sweep(deps)
    assert "conversations.archive" not in chat(deps).methods()
    clock.now += timedelta(hours=1)
    lifecycle.sweep(deps)
    lifecycle.sweep(deps)
    assert chat(deps).methods().count("conversations.archive") == 1
    assert chat(deps).methods()[-1] == "conversations.archive"


def test_a_close_that_never_gets_its_claim_changes_nothing(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, _ = open_and_request(deps)
    incident = incidents.find_incident_for_channel(uow=deps.uow, channel_id=channel)
    assert incident is not None
    monkeypatch.setattr(claims, "WAIT_LIMIT_SECONDS", 0.05)
    with deps.uow.claim(claim_key("incident", incident.id)) as another_worker:
        assert another_worker
        with pytest.raises(ClaimLost):
            lifecycle.close_incident(deps, channel_id=channel, user="U0ONCALL1", resolution="x")
    assert incidents.get_incident(uow=deps.uow, incident_id=incident.id).is_open


def test_no_archive_when_the_policy_says_so(deps: Deps, clock: Clock) -> None:
    deps.policy = replace(
        deps.policy,
        incident=replace(deps.policy.incident, archive_on_close=False, archive_after=timedelta(0)),
    )
    channel, _ = open_and_request(deps)
    lifecycle.close_incident(deps, channel_id=channel, user="U0ONCALL1", resolution="done")
    clock.now += timedelta(days=30)
    lifecycle.sweep(deps)
    assert "conversations.archive" not in chat(deps).methods()
    summary = next(text for text in posts(deps) if "Duration" in text)
    assert "archived" not in summary


def test_access_listing_cancel_and_revoke(deps: Deps) -> None:
    channel, first = open_and_request(deps)
    second = workflows.file_request(
        deps,
        channel_id=channel,
        user="U0ONCALL2",
        resource="serving-cluster-exec",
        duration=None,
        reason="exec into pod",
    )
    workflows.decide(
        deps, request_id=second, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    mine = access.list_my_access(uow=deps.uow, user="U0ONCALL2")
    listing = my_access(mine.pending, mine.active, mine.to_decide, T0)
    # the end as a Slack date (shown in the reader's zone), never a countdown that goes stale
    assert f"🔓 {second}" in listing and "until <!date^" in listing and f"⏳ {first}" in listing
    assert " left" not in listing
    lead = access.list_my_access(uow=deps.uow, user="U0LEAD2")
    assert [r.id for r in lead.to_decide] == [first]
    workflows.cancel(deps, request_id=first.lower(), user="U0ONCALL2")
    assert access.get_request(uow=deps.uow, request_id=first).state is RequestState.CANCELLED
    workflows.revoke(deps, request_id=second, user="U0LEAD3")
    assert access.get_request(uow=deps.uow, request_id=second).state is RequestState.REVOKED
    assert "ended: <@U0LEAD3> revoked it" in text_of(chat(deps).calls[-2])


def test_home_lists_what_waits_on_me_my_access_and_open_incidents(deps: Deps) -> None:
    _, request_id = open_and_request(deps)
    publish(deps, "U0LEAD1")
    method, args = chat(deps).calls[-1]
    view = json.dumps(args["view"])
    assert method == "views.publish" and args["user"] == "U0LEAD1"
    assert request_id in view and "gatehouse.approve" in view and "Ranker latency" in view
    assert len(args["view"]["blocks"]) <= 100


def test_the_lifecycle_feeds_the_metrics(deps: Deps) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    active = sample("gatehouse_requests_total", resource="inference-logs-ro", state="active")
    approvals = sample("gatehouse_time_to_approval_seconds_count", resource="inference-logs-ro")
    _, request_id = open_and_request(deps)
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )
    assert sample("gatehouse_requests_total", resource="inference-logs-ro", state="active") == (
        active + 1
    )
    assert sample("gatehouse_time_to_approval_seconds_count", resource="inference-logs-ro") == (
        approvals + 1
    )
