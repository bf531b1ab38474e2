"""Refused input through the real listeners: the user is told which field and how to write it,
and nothing is filed, changed or audited."""

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState
from bot.domain.durations import ACCEPTED_FORMS
from bot.domain.errors import InvalidInput
from bot.domain.incident import IncidentStatus, Severity
from bot.domain.text import BIDI_CONTROLS, visible
from bot.slack import ids
from bot.slack.views import slack_deps
from tests.unit.example_policy import oncall_example_policy
from tests.unit.fakes import FakeBroker, FakeChat, FakeDirectory, FakeOnCall, MemoryStore
from tests.unit.slack.listening import Listeners, view_state
from tests.unit.slack.scene import Clock, approve, chat, filed, state

BAD_DURATIONS = [
    ("1h30", ACCEPTED_FORMS),
    ("0m", "longer than zero"),
    ("-5m", "longer than zero"),
    ("9999h", "limited to 365 days"),
    ("PT1H", "ISO 8601"),
    ("1.5h", ACCEPTED_FORMS),
    ("1hour", ACCEPTED_FORMS),
    ("1 h", "'1' is not a duration: the number needs its unit right after it"),
    ("\u0661h", "use the digits 0-9"),
]
INVISIBLE = ["\u200b\u200b", "\u200b", "\ufeff", "\u202e", "\u200e \u2066\u2069"]


def store(deps: Deps) -> MemoryStore:
    assert isinstance(deps.uow, MemoryStore)
    return deps.uow


def incident_channel(deps: Deps) -> str:
    incident = workflows.open_incident(
        deps, title="Ranker latency", severity=Severity.SEV2, opener="U0ONCALL1"
    )
    return incident.channel_id


def audit_count(deps: Deps) -> int:
    return len(store(deps).state.events)


@pytest.mark.parametrize(("duration", "gist"), BAD_DURATIONS)
def test_request_access_with_a_bad_duration_is_refused_and_files_nothing(
    deps: Deps, duration: str, gist: str
) -> None:
    channel = incident_channel(deps)
    events, calls = audit_count(deps), len(chat(deps).calls)
    said = Listeners(deps).run_command(
        "/request-access", f"inference-logs-ro {duration} x", channel=channel
    )
    assert gist in said.text
    assert "/request-access <resource> [duration] <reason>" in said.text  # the usage, too
    assert said.responses == []  # the ack said it; the lazy part did nothing
    assert store(deps).state.requests == {}
    assert audit_count(deps) == events
    assert len(chat(deps).calls) == calls  # no card, no message in the channel


@pytest.mark.parametrize("duration", ["9h", "1d"])
def test_request_access_over_max_ttl_is_refused_naming_the_limit(deps: Deps, duration: str) -> None:
    channel = incident_channel(deps)
    events = audit_count(deps)
    said = Listeners(deps).run_command(
        "/request-access", f"inference-logs-ro {duration} checking p99", channel=channel
    )
    assert "inference-logs-ro can be granted for at most 4h" in said.text
    assert store(deps).state.requests == {}
    assert audit_count(deps) == events


def test_a_good_duration_and_a_reason_starting_with_a_word_are_filed(deps: Deps) -> None:
    """The rule takes nothing away: `p99` is a word, `1h30m` a duration."""
    channel = incident_channel(deps)
    listeners = Listeners(deps)
    said = listeners.run_command(
        "/request-access", "inference-logs-ro 1h30m p99 spikes \u202eagain", channel=channel
    )
    assert said.text == "" and said.responses == []
    (request,) = store(deps).state.requests.values()
    assert request.duration.total_seconds() == 5400
    assert request.reason == "p99 spikes again"  # the right-to-left override is not kept


@pytest.mark.parametrize(("duration", "gist"), BAD_DURATIONS)
def test_access_extend_with_a_bad_duration_is_refused_and_asks_nothing(
    deps: Deps, duration: str, gist: str
) -> None:
    _, request_id = filed(deps)
    approve(deps, request_id)
    events = audit_count(deps)
    said = Listeners(deps).run_command("/access", f"extend {request_id} {duration} more time")
    assert gist in said.text and "/access extend" in said.text
    assert store(deps).state.requests[request_id].extensions == []
    assert audit_count(deps) == events


def test_access_extend_past_max_ttl_is_refused_naming_the_limit(deps: Deps) -> None:
    _, request_id = filed(deps, duration="1h")
    approve(deps, request_id)
    assert state(deps, request_id) is RequestState.ACTIVE
    events = audit_count(deps)
    said = Listeners(deps).run_command("/access", f"extend {request_id} 9h more time")
    assert "can be extended by at most 3h" in said.text  # max_ttl 4h from the first issue
    assert store(deps).state.requests[request_id].extensions == []
    assert audit_count(deps) == events


@pytest.mark.parametrize("reason", INVISIBLE)
def test_an_invisible_reason_is_refused_by_command_and_by_form(deps: Deps, reason: str) -> None:
    """A form refused in its ack still runs its lazy part in Bolt
    (https://github.com/slackapi/bolt-python/issues/482): that part must not act or speak again."""
    channel = incident_channel(deps)
    events = audit_count(deps)
    listeners = Listeners(deps)
    said = listeners.run_command(
        "/request-access", f"inference-logs-ro 1h {reason}", channel=channel
    )
    assert "The reason cannot be empty" in said.text
    form = view_state(
        {
            ids.RESOURCE_BLOCK: {
                ids.RESOURCE_INPUT: {"selected_option": {"value": "inference-logs-ro"}}
            },
            ids.REASON_BLOCK: {ids.REASON_INPUT: {"value": reason}},
        },
        metadata=channel,
    )
    submitted = listeners.submit(ids.REQUEST_ACCESS_VIEW, form, user="U0ONCALL2")
    assert submitted.form_errors == {ids.REASON_BLOCK: "Say why you need access."}
    assert chat(deps).methods()[-1] != "chat.postEphemeral"  # told once, in the form
    assert store(deps).state.requests == {}
    assert audit_count(deps) == events


def test_a_forged_form_duration_is_refused_in_the_form_and_files_nothing(deps: Deps) -> None:
    """The form offers a fixed list, but the submitted value is whatever the payload says."""
    channel = incident_channel(deps)
    events = audit_count(deps)
    form = view_state(
        {
            ids.RESOURCE_BLOCK: {
                ids.RESOURCE_INPUT: {"selected_option": {"value": "inference-logs-ro"}}
            },
            ids.DURATION_BLOCK: {ids.DURATION_INPUT: {"selected_option": {"value": "PT1H"}}},
            ids.REASON_BLOCK: {ids.REASON_INPUT: {"value": "checking"}},
        },
        metadata=channel,
    )
    said = Listeners(deps).submit(ids.REQUEST_ACCESS_VIEW, form, user="U0ONCALL2")
    assert "'PT1H' is not a duration" in said.form_errors[ids.DURATION_BLOCK]
    assert store(deps).state.requests == {}
    assert audit_count(deps) == events


@pytest.mark.parametrize("title", INVISIBLE)
def test_an_invisible_title_opens_nothing(deps: Deps, title: str) -> None:
    listeners = Listeners(deps)
    said = listeners.run_command("/incident", f"open {title}")
    assert "The title cannot be empty" in said.text
    form = view_state(
        {
            ids.TITLE_BLOCK: {ids.TITLE_INPUT: {"value": title}},
            ids.SEVERITY_BLOCK: {ids.SEVERITY_INPUT: {"selected_option": {"value": "sev2"}}},
        }
    )
    submitted = listeners.submit(ids.OPEN_INCIDENT_VIEW, form, user="U0ONCALL1")
    assert submitted.form_errors == {ids.TITLE_BLOCK: "Say what is happening."}
    assert store(deps).state.incidents == {} and store(deps).state.events == []
    assert chat(deps).calls == []  # no channel made


def test_an_invisible_title_past_the_listeners_still_makes_no_channel(deps: Deps) -> None:
    """The title is checked before the channel is made, whoever calls the workflow."""
    with pytest.raises(InvalidInput, match="The title cannot be empty"):
        workflows.open_incident(deps, title="\u200b", severity=Severity.SEV2, opener="U0ONCALL1")
    assert chat(deps).calls == [] and store(deps).state.incidents == {}


def test_titles_keep_no_bidi_controls(deps: Deps) -> None:
    Listeners(deps).run_command("/incident", "open Ranker \u202edegraded\u202c sev1")
    (incident,) = store(deps).state.incidents.values()
    assert incident.title == "Ranker degraded" and incident.severity is Severity.SEV1


@pytest.mark.parametrize("resolution", INVISIBLE)
def test_an_invisible_resolution_closes_nothing(deps: Deps, resolution: str) -> None:
    channel = incident_channel(deps)
    events = audit_count(deps)
    said = Listeners(deps).run_command(
        "/incident", f"close {resolution}", user="U0ONCALL1", channel=channel
    )
    assert "The resolution cannot be empty" in said.text
    (incident,) = store(deps).state.incidents.values()
    assert incident.status is IncidentStatus.OPEN
    assert audit_count(deps) == events


@pytest.mark.parametrize("reason", INVISIBLE)
def test_an_invisible_deny_reason_is_refused_in_the_form(deps: Deps, reason: str) -> None:
    _, request_id = filed(deps)
    events, calls = audit_count(deps), len(chat(deps).calls)
    form = view_state(
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"value": reason}}},
        metadata=f"{request_id}|",
    )
    listeners = Listeners(deps)
    submitted = listeners.submit(ids.DENY_REASON_VIEW, form, user="U0LEAD1")
    assert submitted.form_errors == {ids.DENY_REASON_BLOCK: "Say why."}
    assert "chat.postEphemeral" not in chat(deps).methods()[calls:]  # told once, in the form
    assert state(deps, request_id) is RequestState.PENDING
    assert audit_count(deps) == events


def test_an_invisible_extension_reason_is_no_reason(deps: Deps) -> None:
    _, request_id = filed(deps)
    approve(deps, request_id)
    Listeners(deps).run_command("/access", f"extend {request_id} 30m \u200b\u202e")
    (extension,) = store(deps).state.requests[request_id].extensions
    assert extension.reason is None


@pytest.mark.parametrize("action_id", [ids.APPROVE, ids.EXTEND_APPROVE])
def test_an_unknown_request_id_of_100_kb_is_not_echoed(deps: Deps, action_id: str) -> None:
    channel = incident_channel(deps)
    huge: Any = "R-" + "A" * 100_000
    Listeners(deps).click(action_id, huge, user="U0LEAD1", channel=channel)
    method, told = chat(deps).calls[-1]
    assert method == "chat.postEphemeral"  # no button of ours carries such a value
    assert "could not read what Slack sent" in told["text"]
    assert "AAAAAAAAAA" not in told["text"] and len(told["text"]) < 300


def test_an_unknown_request_id_of_the_right_shape_is_named(deps: Deps) -> None:
    channel = incident_channel(deps)
    Listeners(deps).click(ids.APPROVE, "R-ABCDEFGH", user="U0LEAD1", channel=channel)
    assert "There is no access request R-ABCDEFGH." in chat(deps).calls[-1][1]["text"]


def test_a_long_command_is_echoed_clipped(deps: Deps) -> None:
    said = Listeners(deps).run_command("/request-access", "nosuch " + "x" * 100_000)
    assert "You typed: `/request-access nosuch xxx" in said.text
    assert "…`" in said.text and len(said.text) < 2000


_PIECES = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["\u200b", "\u202e", "\u2066", "\ufeff", "\u0661", "P", "T", "-", " "]),
    st.sampled_from(["1h30", "PT1H", "9999h", "0m", "1 h", "<!here>", "&amp;", "🔥", "p99"]),
)
_TYPED = st.lists(_PIECES, max_size=8).map("".join)


@settings(max_examples=60, deadline=None)
@given(duration=_TYPED, reason=_TYPED)
def test_any_request_text_is_filed_cleanly_or_refused_saying_why(
    duration: str, reason: str
) -> None:
    deps = fresh_deps()
    channel = incident_channel(deps)
    events = audit_count(deps)
    said = Listeners(deps).run_command(
        "/request-access", f"inference-logs-ro {duration} {reason}", channel=channel
    )
    assert "Something went wrong" not in said.text
    requests = list(store(deps).state.requests.values())
    if not requests:
        assert said.text.startswith("⚠️ ")  # refused, and told why
        assert audit_count(deps) == events
        return
    (request,) = requests
    assert visible(request.reason) and not set(request.reason) & BIDI_CONTROLS
    assert timedelta(0) < request.duration <= timedelta(hours=4)


def fresh_deps() -> Deps:
    """A `deps` per example: hypothesis runs many examples in one test function."""
    return slack_deps(
        uow=MemoryStore(),
        policy=oncall_example_policy(),
        broker=FakeBroker(),
        chat=FakeChat(),
        clock=Clock(),
        vault_addr="https://vault.example:8200",
        directory=FakeDirectory(),
        oncall=FakeOnCall(),
    )


@pytest.mark.parametrize("command", ["/incident", "/access"])
def test_an_unknown_verb_is_repeated_back_clipped_and_without_bidi_controls(
    deps: Deps, command: str
) -> None:
    said = Listeners(deps).run_command(command, "\u202e" + "y" * 100_000)
    assert f"`{'y' * 39}…` is not an {command} command." in said.text
    assert "\u202e" not in said.text and len(said.text) < 2000


@pytest.mark.parametrize("value", ["<!channel> R-AAAAAAAA", "r-aaaaaaaa", "R-AAAAAAA1", ""])
def test_a_deny_click_without_a_request_id_opens_no_form(deps: Deps, value: str) -> None:
    """Every Deny button carries a request id; anything else is not ours: no form is opened
    (whose title would repeat the value) and the clicker is told privately."""
    channel = incident_channel(deps)
    Listeners(deps).click(ids.DENY, value, user="U0LEAD1", channel=channel)
    methods = [method for method, _ in chat(deps).calls]
    assert "views.open" not in methods
    method, told = chat(deps).calls[-1]
    assert method == "chat.postEphemeral"
    assert "could not read what Slack sent" in told["text"]
