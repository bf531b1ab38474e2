"""A new incident is recorded before its channel exists: a failing insert leaves no channel,
and a channel Slack did not make (or a stop before it was attached) is made by recovery, the
opener told once where it is."""

from datetime import timedelta

import pytest

from bot.app import lifecycle, workflows
from bot.app.deps import Deps
from bot.app.lifecycle import OPENING_GRACE
from bot.app.workflows import ChannelNotMade
from bot.domain import events
from bot.domain.audit import Action
from bot.domain.errors import NotFound
from bot.domain.incident import Incident, Severity
from bot.services import incidents
from bot.slack.blocks import home as home_blocks
from tests.unit.fakes import MemoryStore
from tests.unit.slack.listening import Listeners
from tests.unit.slack.scene import Clock, chat


def store(deps: Deps) -> MemoryStore:
    assert isinstance(deps.uow, MemoryStore)
    return deps.uow


def only_incident(deps: Deps) -> Incident:
    (incident,) = store(deps).state.incidents.values()
    return incident


def opened_unmade(deps: Deps) -> Incident:
    """An incident whose opening Slack refused at conversations.create."""
    chat(deps).failing = {"conversations.create"}
    with pytest.raises(ChannelNotMade):
        workflows.open_incident(deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1")
    chat(deps).failing = set()
    return only_incident(deps)


def test_the_incident_is_recorded_before_its_channel_is_made(deps: Deps) -> None:
    incident = workflows.open_incident(
        deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1"
    )
    assert incident.has_channel and card_of(deps, incident) is not None
    assert chat(deps).methods() == [
        "conversations.create",
        "conversations.invite",
        "conversations.setTopic",
        "chat.postMessage",
        "pins.add",
    ]
    actions = [e.entry.action for e in store(deps).state.events]
    assert actions == [Action.INCIDENT_OPENED, Action.INCIDENT_CHANNEL_CREATED]
    opened, attached = (e.entry.data for e in store(deps).state.events)
    assert opened["channel_id"] == "" and opened["channel_name"] == ""
    assert attached["channel_id"] == incident.channel_id and attached["late"] is False


def test_an_insert_that_fails_leaves_no_channel(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_gone(**_: object) -> None:
        raise ConnectionError("database gone")

    monkeypatch.setattr(incidents, "start_incident", database_gone)
    with pytest.raises(ConnectionError):
        workflows.open_incident(deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1")
    assert chat(deps).calls == [] and chat(deps).channels == {}


def test_slack_refusing_the_channel_leaves_the_incident_recorded_and_says_so(
    deps: Deps,
) -> None:
    chat(deps).failing = {"conversations.create"}
    said = Listeners(deps).run_command("/incident", "open Drift", user="U0ONCALL1")
    incident = only_incident(deps)
    assert not incident.has_channel and incident.is_open
    assert f"Opened {incident.id}, but Slack did not make its channel" in said.text
    assert "you will get a direct message saying where" in said.text


def test_recovery_makes_the_channel_later_and_tells_the_opener_once(
    deps: Deps, clock: Clock
) -> None:
    incident = opened_unmade(deps)
    lifecycle.recover(deps)
    assert chat(deps).calls == []  # the opening worker may still be at it
    clock.now += OPENING_GRACE + timedelta(seconds=1)
    lifecycle.recover(deps)
    lifecycle.recover(deps)

    made = only_incident(deps)
    assert made.has_channel and card_of(deps, made) is not None
    assert made.channel_name.startswith("inc-") and "drift" in made.channel_name
    assert chat(deps).methods().count("conversations.create") == 1
    assert chat(deps).methods().count("pins.add") == 1
    (dm,) = [a for m, a in chat(deps).calls if m == "dm"]
    assert dm["user"] == "U0ONCALL1"
    assert f"{incident.id}" in dm["text"] and f"<#{made.channel_id}>" in dm["text"]
    late = [
        e.entry for e in store(deps).state.events if e.entry.action == "incident.channel_created"
    ]
    assert [e.data["late"] for e in late] == [True]


def test_recovery_takes_the_next_name_when_the_first_is_taken(deps: Deps, clock: Clock) -> None:
    opened_unmade(deps)
    first = "inc-20261123-drift"
    chat(deps).taken.add(first)  # e.g. a channel made just before a stop, never attached
    clock.now += OPENING_GRACE + timedelta(seconds=1)
    lifecycle.recover(deps)
    assert only_incident(deps).channel_name == f"{first}-2"


def test_recovery_posts_an_incident_card_never_posted(deps: Deps, clock: Clock) -> None:
    chat(deps).failing = {"chat.postMessage"}
    incident = workflows.open_incident(
        deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1"
    )
    chat(deps).failing = set()
    assert incident.has_channel and card_of(deps, incident) is None
    clock.now += OPENING_GRACE + timedelta(seconds=1)
    lifecycle.recover(deps)
    lifecycle.recover(deps)
    assert card_of(deps, only_incident(deps)) is not None
    assert chat(deps).methods().count("pins.add") == 1
    assert "dm" not in chat(deps).methods()  # the channel was never in doubt


def test_an_incident_without_its_channel_is_found_by_no_channel(deps: Deps) -> None:
    incident = opened_unmade(deps)
    assert incidents.find_incident_for_channel(uow=deps.uow, channel_id="") is None
    with pytest.raises(NotFound):
        workflows.incident_of_channel(deps, "")
    home = str(
        home_blocks.home_view(
            to_decide=[],
            active=[],
            incidents=incidents.list_open_incidents(uow=deps.uow),
            now=deps.clock(),
        )
    )
    assert incident.id in home and "(channel being made)" in home and "<#>" not in home


def test_the_opener_is_told_of_a_late_channel_even_when_its_card_fails(
    deps: Deps, clock: Clock
) -> None:
    opened_unmade(deps)
    chat(deps).failing = {"chat.postMessage"}
    clock.now += OPENING_GRACE + timedelta(seconds=1)
    lifecycle.recover(deps)
    assert only_incident(deps).has_channel and card_of(deps, only_incident(deps)) is None
    chat(deps).failing = set()
    lifecycle.recover(deps)
    assert card_of(deps, only_incident(deps)) is not None
    assert chat(deps).methods().count("dm") == 1
    assert chat(deps).methods().count("conversations.create") == 1


def test_incident_commands_meet_an_incident_without_its_channel_as_no_incident(
    deps: Deps,
) -> None:
    incident = opened_unmade(deps)
    listeners = Listeners(deps)
    for typed in ("status", "close all good", "commander <@U0LEAD1|lead>"):
        said = listeners.run_command("/incident", typed, user="U0ONCALL1")  # not its channel
        assert "not an incident channel" in said.text
    kept = only_incident(deps)
    assert kept.is_open and kept.commander_id == incident.commander_id


def test_the_channel_event_reads_back_typed(deps: Deps) -> None:
    workflows.open_incident(deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1")
    opened, attached = (events.from_entry(e.entry) for e in store(deps).state.events)
    assert isinstance(opened, events.IncidentOpened) and opened.channel_id == ""
    assert isinstance(attached, events.IncidentChannelCreated)
    assert attached.channel_name == only_incident(deps).channel_name and not attached.late


def card_of(deps: Deps, incident: Incident) -> str | None:
    return incidents.incident_card(uow=deps.uow, incident_id=incident.id)
