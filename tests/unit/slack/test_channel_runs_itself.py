"""The incident channel runs itself: the announce channel, groups invited at open, the card's
buttons (with the commands' checks), a request form that offers only what is allowed, and a
close summary without operator jargon."""

import json
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot.app import lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.errors import ChatError
from bot.domain.incident import Incident, Severity
from bot.services import incidents
from bot.slack import ids
from bot.slack.blocks.access import duration_choices, request_modal
from tests.unit.example_policy import oncall_example_policy
from tests.unit.fakes import FakeChat, FakeDirectory
from tests.unit.slack.listening import Listeners, view_state
from tests.unit.slack.scene import Clock

ANNOUNCE = "C0ANNOUNCE"


def chat(deps: Deps) -> FakeChat:
    assert isinstance(deps.chat, FakeChat)
    return deps.chat


def configured(deps: Deps, **incident: Any) -> Deps:
    """`deps` with these incident rules (and a notifier that knows them)."""
    policy = replace(deps.policy, incident=replace(deps.policy.incident, **incident))
    return replace(deps, policy=policy, follower=None)


def opened(deps: Deps, opener: str = "U0ONCALL1") -> Incident:
    return workflows.open_incident(
        deps, title="Ranker <latency>", severity=Severity.SEV1, opener=opener
    )


def calls(deps: Deps, method: str) -> list[dict[str, Any]]:
    return [args for name, args in chat(deps).calls if name == method]


# -- open: invited groups, the announce channel ------------------------------------------------


def test_an_incident_is_announced_once_opened_and_once_closed(deps: Deps, clock: Clock) -> None:
    deps = configured(deps, announce_channel=ANNOUNCE)
    incident = opened(deps)
    clock.now += timedelta(hours=2, minutes=5)
    lifecycle.close_incident(
        deps, channel_id=incident.channel_id, user="U0ONCALL1", resolution="rolled back"
    )
    deps.notify()
    lines = [
        post["text"] for post in calls(deps, "chat.postMessage") if post["channel"] == ANNOUNCE
    ]
    assert len(lines) == 2
    assert lines[0].startswith(f"🚨 {incident.id} opened · SEV1 · Ranker &lt;latency&gt;")
    assert f"<#{incident.channel_id}>" in lines[0] and "<@U0ONCALL1>" in lines[0]
    assert lines[1].startswith(f"✅ {incident.id} closed after 2h5m · ")
    assert "rolled back" in lines[1]


def test_nothing_is_announced_without_an_announce_channel(deps: Deps) -> None:
    opened(deps)
    deps.notify()
    assert [p["channel"] for p in calls(deps, "chat.postMessage")] == [
        calls(deps, "pins.add")[0]["channel"]
    ]


def test_invite_groups_are_invited_at_open_and_a_failing_one_is_skipped(deps: Deps) -> None:
    directory = deps.directory
    assert isinstance(directory, FakeDirectory)
    directory.add_group("S0PLATLEAD", "platform-leads", ["U0PLAT1"])
    deps = configured(deps, invite_groups=("ml-leads", "platform-leads", "ml-primary"))
    incident = opened(deps)  # nobody on call: ml-primary adds nobody
    invited = [call["users"] for call in calls(deps, "conversations.invite")]
    assert invited == [["U0ONCALL1"], ["U0LEAD1", "U0LEAD2", "U0LEAD3", "U0PLAT1"]]
    assert incidents.incident_card(uow=deps.uow, incident_id=incident.id) is not None

    directory.failure = ChatError("Slack refused usergroups.users.list: ratelimited")
    second = opened(deps)
    invited = [call["users"] for call in calls(deps, "conversations.invite")][2:]
    assert invited == [["U0ONCALL1"], ["U0LEAD1", "U0LEAD2", "U0LEAD3"]]
    assert incidents.incident_card(uow=deps.uow, incident_id=second.id) is not None


def test_an_invite_slack_refuses_never_fails_the_open(deps: Deps) -> None:
    deps = configured(deps, invite_groups=("ml-leads",))
    chat(deps).failing.add("conversations.invite")
    incident = opened(deps)
    assert incidents.incident_card(uow=deps.uow, incident_id=incident.id) is None  # opener too
    chat(deps).failing.clear()
    workflows.finish_opening(deps, incident.id, late=True)  # what the sweep does next
    assert incidents.incident_card(uow=deps.uow, incident_id=incident.id) is not None


# -- the card's buttons ------------------------------------------------------------------------


def card_buttons(deps: Deps) -> list[str]:
    card = calls(deps, "chat.postMessage")[0]
    return [e["action_id"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_the_card_carries_request_hand_off_and_close_while_open(deps: Deps) -> None:
    incident = opened(deps)
    assert card_buttons(deps) == [ids.INCIDENT_REQUEST, ids.INCIDENT_HAND_OFF, ids.INCIDENT_CLOSE]
    lifecycle.close_incident(
        deps, channel_id=incident.channel_id, user="U0ONCALL1", resolution="done"
    )
    redrawn = calls(deps, "chat.update")[-1]
    assert not [b for b in redrawn["blocks"] if b["type"] == "actions"]


def test_request_access_opens_a_form_of_what_the_clicker_may_request(deps: Deps) -> None:
    incident = opened(deps)
    Listeners(deps).click(ids.INCIDENT_REQUEST, incident.id, user="U0ONCALL2", channel="C1")
    view = calls(deps, "views.open")[-1]["view"]
    assert view["callback_id"] == ids.REQUEST_ACCESS_VIEW
    assert set(_options(view, ids.RESOURCE_BLOCK)) == {
        "inference-logs-ro",
        "feature-store-rw",
        "serving-cluster-exec",
    }
    assert _options(view, ids.DURATION_BLOCK) == ["15m", "30m", "1h", "2h", "4h"]

    Listeners(deps).click(ids.INCIDENT_REQUEST, incident.id, user="U0LEAD1", channel="C1")
    told = calls(deps, "chat.postEphemeral")[-1]
    assert told["user"] == "U0LEAD1" and "nothing to request here" in told["text"]
    assert len(calls(deps, "views.open")) == 1


def test_hand_off_and_close_refuse_whoever_the_commands_refuse(deps: Deps) -> None:
    incident = opened(deps)
    for action in (ids.INCIDENT_HAND_OFF, ids.INCIDENT_CLOSE):
        Listeners(deps).click(action, incident.id, user="U0LEAD1", channel=incident.channel_id)
        told = calls(deps, "chat.postEphemeral")[-1]
        assert "Only the commander <@U0ONCALL1> or an incident admin can" in told["text"]
    assert calls(deps, "views.open") == []


def test_hand_off_by_the_card_makes_the_picked_person_commander(deps: Deps) -> None:
    incident = opened(deps)
    listeners = Listeners(deps)
    listeners.click(ids.INCIDENT_HAND_OFF, incident.id, user="U0ONCALL1", channel="C1")
    view = calls(deps, "views.open")[-1]["view"]
    assert view["callback_id"] == ids.HAND_OFF_VIEW
    empty = view_state({}, metadata=incident.id)
    said = listeners.submit(ids.HAND_OFF_VIEW, empty, user="U0ONCALL1")
    assert said.form_errors == {ids.HAND_OFF_BLOCK: "Pick the new commander."}
    picked = {ids.HAND_OFF_BLOCK: {ids.HAND_OFF_INPUT: {"selected_user": "U0LEAD1"}}}
    listeners.submit(ids.HAND_OFF_VIEW, view_state(picked, incident.id), user="U0ONCALL1")
    assert incidents.get_incident(uow=deps.uow, incident_id=incident.id).commander_id == "U0LEAD1"


def test_an_admin_may_close_by_the_card_and_the_form_asks_the_resolution(deps: Deps) -> None:
    incident = opened(deps)
    listeners = Listeners(deps)
    listeners.click(ids.INCIDENT_CLOSE, incident.id, user="U0ADMIN1", channel="C1")
    view = calls(deps, "views.open")[-1]["view"]
    assert view["callback_id"] == ids.CLOSE_VIEW
    blank = {ids.RESOLUTION_BLOCK: {ids.RESOLUTION_INPUT: {"value": " "}}}
    said = listeners.submit(ids.CLOSE_VIEW, view_state(blank, incident.id), user="U0ADMIN1")
    assert ids.RESOLUTION_BLOCK in said.form_errors
    assert incidents.get_incident(uow=deps.uow, incident_id=incident.id).is_open
    done = {ids.RESOLUTION_BLOCK: {ids.RESOLUTION_INPUT: {"value": "rolled back"}}}
    listeners.submit(ids.CLOSE_VIEW, view_state(done, incident.id), user="U0ADMIN1")
    closed = incidents.get_incident(uow=deps.uow, incident_id=incident.id)
    assert not closed.is_open and closed.resolution == "rolled back"


def test_a_form_for_another_incident_is_refused(deps: Deps) -> None:
    incident = opened(deps)
    picked = {ids.HAND_OFF_BLOCK: {ids.HAND_OFF_INPUT: {"selected_user": "U0LEAD1"}}}
    forged = view_state(picked, metadata=incident.id)
    forged["private_metadata"] = "forged"
    listeners = Listeners(deps)
    body = {"type": "view_submission", "user": {"id": "U0ONCALL1"}, "view": forged}
    replies = listeners.views[ids.HAND_OFF_VIEW]
    acks: list[dict[str, Any]] = []
    replies[0](ack=lambda **kw: acks.append(kw), body=body)
    assert acks and acks[0]["response_action"] == "errors"
    assert incidents.get_incident(uow=deps.uow, incident_id=incident.id).commander_id == "U0ONCALL1"


# -- the request form ---------------------------------------------------------------------------


def _options(view: dict[str, Any], block_id: str) -> list[str]:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return [option["value"] for option in block["element"]["options"]]


def test_durations_go_up_to_the_longest_allowed_and_each_limit_is_shown() -> None:
    policy = oncall_example_policy()
    short = [policy.resource("serving-cluster-exec")]
    assert duration_choices(short) == ["15m", "30m", "1h"]
    odd = [replace(policy.resource("feature-store-rw"), max_ttl=timedelta(minutes=90))]
    assert duration_choices(odd) == ["15m", "30m", "1h", "1h30m"]
    view = request_modal(short, "C1")
    hints = json.dumps(view["blocks"])
    assert "At most: serving-cluster-exec 1h" in hints
    assert "serving-cluster-exec (at most 15m)" in hints


def test_break_glass_is_offered_only_where_the_policy_has_it() -> None:
    policy = oncall_example_policy()
    view = request_modal([policy.resource("inference-logs-ro")], "C1")
    assert ids.BREAK_GLASS_BLOCK not in {b.get("block_id") for b in view["blocks"]}


def test_a_duration_over_the_picked_resources_limit_is_refused_in_the_form(deps: Deps) -> None:
    incident = opened(deps)
    form = view_state(
        {
            ids.RESOURCE_BLOCK: {
                ids.RESOURCE_INPUT: {"selected_option": {"value": "serving-cluster-exec"}}
            },
            ids.DURATION_BLOCK: {ids.DURATION_INPUT: {"selected_option": {"value": "4h"}}},
            ids.REASON_BLOCK: {ids.REASON_INPUT: {"value": "pods stuck"}},
        },
        metadata=incident.channel_id,
    )
    said = Listeners(deps).submit(ids.REQUEST_ACCESS_VIEW, form, user="U0ONCALL2")
    assert said.form_errors == {
        ids.DURATION_BLOCK: "serving-cluster-exec can be granted for at most 1h; you asked for 4h."
    }


def test_no_form_outside_an_open_incident(deps: Deps) -> None:
    said = Listeners(deps).run_command("/request-access", "", user="U0ONCALL2", channel="C0GENERAL")
    assert "not an incident channel" in said.text
    assert calls(deps, "views.open") == []


# -- the close summary --------------------------------------------------------------------------


def test_the_summary_names_the_incident_and_carries_no_hash_setting_or_zero_count(
    deps: Deps, clock: Clock
) -> None:
    incident = opened(deps)
    clock.now += timedelta(minutes=95)
    lifecycle.close_incident(
        deps, channel_id=incident.channel_id, user="U0ONCALL1", resolution="rolled back"
    )
    summary = next(post for post in calls(deps, "chat.postMessage") if "closed" in post["text"])
    shown = summary["text"] + json.dumps(summary["blocks"])
    fields = next(b for b in summary["blocks"] if "fields" in b)["fields"]
    assert [f["text"].split("\n")[0] for f in fields] == [
        "*Severity*",
        "*Commander*",
        "*Opened*",
        "*Closed*",
        "*Duration*",
        "*Resolution*",
    ]
    header = summary["blocks"][0]["text"]["text"]
    assert header == f"✅ {incident.id} closed · Ranker <latency>"  # plain text: shown as typed
    assert "SEV1" in shown and "1h35m" in shown
    assert "Closing had no access to end." in shown
    assert "(s)" not in shown and " 0 " not in shown and "issued —" not in shown
    assert not re.search(r"[0-9a-f]{64}", shown) and "GATEHOUSE_" not in shown
    assert "gatehouse " not in shown and "archive_after" not in shown


@pytest.mark.parametrize("archive_after", [timedelta(0), timedelta(hours=2)])
def test_the_summary_says_when_the_channel_is_archived(
    deps: Deps, archive_after: timedelta
) -> None:
    deps = configured(deps, archive_after=archive_after)
    incident = opened(deps)
    lifecycle.close_incident(deps, channel_id=incident.channel_id, user="U0ONCALL1", resolution="x")
    shown = json.dumps(calls(deps, "chat.postMessage")[-1]["blocks"])
    expected = "archived now" if not archive_after else "stays open for 2h, then is archived"
    assert expected in shown
    archived = "conversations.archive" in chat(deps).methods()
    assert archived is (not archive_after)
