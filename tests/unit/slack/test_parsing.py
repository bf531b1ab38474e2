"""What people type after slash commands: every input parses or gets a clear InvalidInput."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.durations import ACCEPTED_FORMS
from bot.domain.errors import InvalidInput
from bot.domain.incident import Severity
from bot.slack.blocks.text import escape
from bot.slack.errors import unknown_resource, user_message
from bot.slack.parsing import (
    CloseIncident,
    HandOff,
    IncidentStatus,
    OpenIncident,
    parse_access_command,
    parse_incident_command,
    parse_request_text,
)
from tests.unit.example_policy import example_policy


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", OpenIncident(None, Severity.SEV2)),
        ("open", OpenIncident(None, Severity.SEV2)),
        ("open Ranker p99 over 2s sev1", OpenIncident("Ranker p99 over 2s", Severity.SEV1)),
        ("OPEN  model drift  SEV3", OpenIncident("model drift", Severity.SEV3)),
        ("status", IncidentStatus()),
        ("commander <@U0LEAD1|ada>", HandOff("U0LEAD1")),
        ("commander <@U0LEAD1>", HandOff("U0LEAD1")),
        ("close rolled back the ranker", CloseIncident("rolled back the ranker")),
    ],
)
def test_incident_commands(text: str, parsed: object) -> None:
    assert parse_incident_command(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("close", "Say how it was resolved"),
        ("commander ada", "Name the new commander"),
        ("commander", "Name the new commander"),
        ("reopen now", "`reopen` is not an /incident command"),
        ("open " + "x" * 200, "title is 200 characters long; the limit is 150"),
    ],
)
def test_bad_incident_commands_say_what_to_do(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_incident_command(text)


@given(st.text(max_size=400))
def test_any_incident_text_parses_or_is_refused_clearly(text: str) -> None:
    try:
        parse_incident_command(text)
    except InvalidInput as error:
        refusal = error.message
        assert refusal


@given(st.text(max_size=400))
def test_any_request_text_parses_or_is_refused_clearly(text: str) -> None:
    try:
        resource, _, reason = parse_request_text(text)
    except InvalidInput as error:
        refusal = error.message
        assert "/request-access" in refusal or ACCEPTED_FORMS in refusal
    else:
        assert resource and reason and resource == text.split()[0]


@given(st.text(max_size=300))
def test_escaped_text_can_never_mention_or_link(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    restored = escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    # nothing lost, only made harmless (a word joiner keeps `@here` from notifying)
    assert restored.replace("\u2060", "") == text.replace("\u2060", "")


def test_unknown_resource_suggests_the_closest_names() -> None:
    error = unknown_resource(example_policy(), "inference-logs")
    assert "Did you mean `inference-logs-ro`?" in error.message
    assert "Known resources: `feature-store-rw`" in error.message


def test_user_messages_echo_what_was_typed_escaped() -> None:
    text = user_message(InvalidInput("No."), typed="/request-access <!here> x")
    assert text.startswith("⚠️ No.") and "&lt;!here&gt;" in text
    assert "Something went wrong" in user_message(RuntimeError("boom"))


@pytest.mark.parametrize(
    ("text", "verb", "request_id"),
    [
        ("", "list", None),
        ("list", "list", None),
        ("cancel r-abcdefgh", "cancel", "R-ABCDEFGH"),
        ("revoke R-2345ABCD", "revoke", "R-2345ABCD"),
    ],
)
def test_access_commands(text: str, verb: str, request_id: str | None) -> None:
    parsed = parse_access_command(text)
    assert (parsed.verb, parsed.request_id) == (verb, request_id)


@pytest.mark.parametrize("text", ["cancel", "revoke R-1", "renew R-ABCDEFGH 1h", "cancel a b"])
def test_bad_access_commands(text: str) -> None:
    with pytest.raises(InvalidInput, match="/access"):
        parse_access_command(text)


@given(st.text(max_size=200))
def test_any_access_text_parses_or_is_refused_clearly(text: str) -> None:
    try:
        parse_access_command(text)
    except InvalidInput as error:
        refusal = error.message
        assert refusal
