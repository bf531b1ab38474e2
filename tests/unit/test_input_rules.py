"""The domain's rules for what people type: durations and text fields, one rule each."""

import re
import unicodedata
from datetime import timedelta

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from bot.cli.audit import _parse_anchor
from bot.domain.durations import (
    ACCEPTED_FORMS,
    DURATION_PATTERN,
    format_duration,
    looks_like_duration,
    parse_duration,
)
from bot.domain.errors import InvalidInput
from bot.domain.text import (
    BIDI_CONTROLS,
    clean,
    echo,
    optional_text,
    required_text,
    shown_id,
    visible,
)
from bot.policy import PolicyError, parse_policy
from bot.slack.parsing import parse_request_text
from tests.unit.example_policy import example_policy
from tests.unit.test_policy import dump, example_doc

# -- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "gist"),
    [
        ("1h30", ACCEPTED_FORMS),
        ("0m", "longer than zero"),
        ("-5m", "longer than zero"),
        ("+5m", "leave out the sign"),
        ("9999h", "limited to 365 days"),
        ("PT1H", "ISO 8601"),
        ("p1d", "ISO 8601"),
        ("1.5h", ACCEPTED_FORMS),
        ("1hour", ACCEPTED_FORMS),
        ("1", "unit right after it"),
        ("\u0661h", "digits 0-9"),  # Arabic-Indic one
        ("\uff11h", "digits 0-9"),  # fullwidth one
        ("30m1h", ACCEPTED_FORMS),
        ("9" * 5000 + "h", "limited to 365 days"),
    ],
)
def test_a_word_that_looks_like_a_duration_parses_or_is_refused_saying_how(
    typed: str, gist: str
) -> None:
    assert looks_like_duration(typed)
    with pytest.raises(InvalidInput) as refused:
        parse_duration(typed)
    assert gist in refused.value.message
    assert len(refused.value.message) < 300  # a 5,000-digit number is not repeated back


@pytest.mark.parametrize(
    "word", ["checking", "PTO", "Production", "p99", "p99th", "-", "—", "x1h", ",5m", ""]
)
def test_other_words_do_not_look_like_durations(word: str) -> None:
    assert not looks_like_duration(word)


@pytest.mark.parametrize(
    "typed",
    ["1h30 checking", "0m checking", "-5m x", "PT1H x", "1.5h x", "1hour x", "1 h x", "\u0661h x"],
)
def test_request_text_with_a_bad_duration_is_refused_not_read_as_the_reason(typed: str) -> None:
    with pytest.raises(InvalidInput, match="is not a duration"):
        parse_request_text(f"inference-logs-ro {typed}")


def test_request_text_over_max_ttl_is_refused_by_the_resource_naming_its_limit() -> None:
    resource, duration, _ = parse_request_text("inference-logs-ro 9h checking")
    assert duration == "9h"
    rule = example_policy().resource(resource)
    for asked in ("9h", "1d"):
        with pytest.raises(InvalidInput, match="at most 4h"):
            rule.granted_duration(parse_duration(asked))


def test_break_glass_over_max_ttl_is_refused_too_and_within_it_capped() -> None:
    rule = example_policy().resource("serving-cluster-exec")  # max_ttl 1h, break-glass 15m
    with pytest.raises(InvalidInput, match="at most 1h"):
        rule.granted_duration(timedelta(hours=2), break_glass=True)
    assert rule.granted_duration(timedelta(hours=1), break_glass=True) == timedelta(minutes=15)


@given(st.integers(min_value=1, max_value=365 * 86400))
def test_every_duration_the_formatter_prints_parses_back_and_looks_like_one(seconds: int) -> None:
    printed = format_duration(timedelta(seconds=seconds))
    assert looks_like_duration(printed)
    assert parse_duration(printed) == timedelta(seconds=seconds)


@given(st.text(max_size=40))
def test_any_word_parses_to_a_positive_duration_or_is_refused(word: str) -> None:
    try:
        parsed = parse_duration(word)
    except InvalidInput as refused:
        message = refused.message
    else:
        assert timedelta(0) < parsed <= timedelta(days=365)
        assert word.strip().isascii()
        return
    assert any(gist in message for gist in (ACCEPTED_FORMS, "longer than zero", "365 days"))


def test_the_policy_file_reads_durations_by_the_same_rule() -> None:
    doc = example_doc()
    for bad in ("1h30", "PT1H", "\u0661h", "-5m", "0m"):
        doc["resources"]["inference-logs-ro"]["max_ttl"] = bad
        with pytest.raises(PolicyError, match=r"resources\.inference-logs-ro\.max_ttl"):
            parse_policy(dump(doc))
    doc["resources"]["inference-logs-ro"]["max_ttl"] = "1H30M"
    assert parse_policy(dump(doc)).resource("inference-logs-ro").max_ttl == timedelta(minutes=90)


def test_the_schema_pattern_is_the_parser_rule() -> None:
    for text in ("90s", "45m", "2h", "1h30m", "1d", "1H30M"):
        assert re.fullmatch(DURATION_PATTERN, text)
    for text in ("", "1h30", "\u0661h", "PT1H", "-5m", "1.5h"):
        assert not re.fullmatch(DURATION_PATTERN, text)


# -- text --------------------------------------------------------------------------------------

_FORMAT_CHARACTERS = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
_BLANKS = [" ", "\t", "\n", "\u3000", "\xa0", "\u2800", "\u3164", "\u115f", "\u1160", "\uffa0"]
_INVISIBLE = st.text(st.sampled_from([*_FORMAT_CHARACTERS, *_BLANKS]))


@given(_INVISIBLE)
def test_text_of_only_format_characters_and_spaces_is_empty(text: str) -> None:
    assert visible(text) == ""
    with pytest.raises(InvalidInput, match="The reason cannot be empty"):
        required_text(text, field="reason", max_length=500)
    assert optional_text(text, field="reason", max_length=500) is None


@pytest.mark.parametrize(
    "typed",
    [
        "\u200b\u200b",  # two zero-width spaces
        "\u200b",
        "\ufeff",  # byte order mark
        "\u200d\u200c",  # joiners
        "\u202e",  # right-to-left override
        "\u2066\u2069",  # an empty isolate
        " \u200e\u200f ",
        "\u2800\u3164",  # the blank Braille pattern and a Hangul filler: letters drawn as blanks
    ],
)
def test_invisible_required_fields_are_refused_naming_the_field(typed: str) -> None:
    for field in ("title", "resolution", "reason for the denial"):
        with pytest.raises(InvalidInput, match=f"The {field} cannot be empty"):
            required_text(typed, field=field, max_length=100)


@given(st.text(max_size=200))
def test_kept_text_never_holds_a_bidi_control_or_a_control_character(text: str) -> None:
    kept = clean(text)
    assert not set(kept) & BIDI_CONTROLS
    assert all(c in "\n\t" or unicodedata.category(c) != "Cc" for c in kept)
    assert kept == clean(kept)  # cleaning twice changes nothing


def test_the_right_to_left_override_is_dropped_and_emoji_are_kept() -> None:
    assert required_text("fix \u202eexe.txt", field="reason", max_length=50) == "fix exe.txt"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert required_text(f"{family} {flag}", field="title", max_length=50) == f"{family} {flag}"
    assert required_text("\u200b disk full \u200b", field="title", max_length=50) == "disk full"
    assert required_text(" \u200b\n\u200d disk \u200b", field="title", max_length=50) == "disk"
    assert required_text("a\x00b", field="title", max_length=50) == "ab"  # PostgreSQL keeps no NUL


def test_length_is_counted_on_the_kept_text() -> None:
    assert required_text("\u202e" * 10 + "x" * 5, field="title", max_length=5) == "xxxxx"
    with pytest.raises(InvalidInput, match="The title is 6 characters long; the limit is 5"):
        required_text("x" * 6, field="title", max_length=5)


def test_echoes_are_clipped_and_ids_are_shown_only_when_they_could_be_ids() -> None:
    assert echo("x" * 100_000) == "x" * 79 + "…"
    assert echo("short") == "short"
    assert shown_id(" R-ABCDEFGH ", length=10) == "R-ABCDEFGH"
    assert shown_id("R-" + "A" * 100_000, length=10) is None
    assert shown_id("<!channel>", length=10) is None


# -- numbers elsewhere -------------------------------------------------------------------------


def test_an_audit_anchor_takes_ascii_digits_and_a_hex_digest_only() -> None:
    digest = "ab" * 32
    assert _parse_anchor(f"42:{digest.upper()}") == (42, digest)
    for bad in (f"\u0664\u0662:{digest}", f"42:{'zz' * 32}", f"-1:{digest}", "9" * 5000 + ":x"):
        with pytest.raises(typer.BadParameter, match="is not SEQ:HASH") as refused:
            _parse_anchor(bad)
        assert len(str(refused.value)) < 200
