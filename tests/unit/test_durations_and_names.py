from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.channel_name import MAX_CHANNEL_NAME, incident_channel_name, slugify
from bot.domain.durations import format_duration, parse_duration
from bot.domain.errors import InvalidInput
from bot.slack.parsing import parse_request_text

DAY = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("45m", 2700), ("2h", 7200), ("1h30m", 5400), (" 1H30M ", 5400), ("1d", 86400)],
)
def test_durations_people_type(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "abc", "10x", "0s", "0h0m", "1.5h", "-5m", "m", "30m1h", "999d"]
)
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_duration(text)
    assert text.strip() in error.value.message or "365" in error.value.message


@given(st.integers(min_value=1, max_value=365 * 86400))
def test_format_and_parse_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_channel_name_follows_the_house_format() -> None:
    assert incident_channel_name("inc", "Model latency: p99 > 2s!", DAY) == (
        "inc-20261123-model-latency-p99-2s"
    )
    assert (
        incident_channel_name("inc", "Café outage", DAY, attempt=3) == "inc-20261123-cafe-outage-3"
    )
    assert incident_channel_name("inc", "🔥🔥", DAY) == "inc-20261123-incident"
    assert slugify("  --Feature  Store__RW-- ") == "feature-store-rw"


@given(title=st.text(max_size=300), attempt=st.integers(min_value=1, max_value=99))
def test_channel_names_are_always_valid_for_slack(title: str, attempt: int) -> None:
    name = incident_channel_name("inc", title, DAY, attempt)
    assert len(name) <= MAX_CHANNEL_NAME
    assert name.startswith("inc-20261123-")
    assert all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in name)
    assert "--" not in name
    if attempt > 1:
        assert name.endswith(f"-{attempt}")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (
            "inference-logs-ro 2h checking p99 spikes",
            ("inference-logs-ro", "2h", "checking p99 spikes"),
        ),
        ("inference-logs-ro checking logs", ("inference-logs-ro", None, "checking logs")),
        ("feature-store-rw 1h30m   fix   row", ("feature-store-rw", "1h30m", "fix row")),
    ],
)
def test_request_text_is_split_into_resource_duration_reason(
    text: str, parsed: tuple[str, str | None, str]
) -> None:
    assert parse_request_text(text) == parsed


@pytest.mark.parametrize("text", ["", "   ", "inference-logs-ro", "inference-logs-ro 2h"])
def test_request_text_without_a_reason_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="/request-access"):
        parse_request_text(text)
