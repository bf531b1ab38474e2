"""Durations as people type them: `90s`, `45m`, `2h`, `1h30m`, `1d`.

One rule for commands, forms, the policy file and settings: a number of ASCII digits with a
unit, units largest first. A word that merely looks like a duration (a digit, a sign or an
ISO 8601 `P…` first) is never quietly read as something else: it parses or it is refused.
"""

import re
from datetime import timedelta

from bot.domain.errors import InvalidInput
from bot.domain.text import echo

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_PATTERN = r"^(?=[0-9])([0-9]+[dD])?([0-9]+[hH])?([0-9]+[mM])?([0-9]+[sS])?$"
"""The accepted form as a regular expression (ASCII digits only), also for the policy schema."""
_DURATION = re.compile(DURATION_PATTERN)
ACCEPTED_FORMS = "30m, 1h, 1h30m, 90s or 1d"
"""How to write a duration, for every message that refuses one."""
# Any decimal digit (not only ASCII) counts for "looks like", so `١h` is refused, not ignored;
# ISO 8601 is `P` with a number and a unit or `T` (`P1D`, `PT1H`), so `p99` is still a word.
_SIGNS = "+-\u2212\u2013\u2014"  # plus, hyphen-minus, minus sign, en and em dash
_ISO_8601 = re.compile(r"[Pp](?:\d+[YMWDymwd]|[Tt]\d)")
_LOOKS_LIKE = re.compile(rf"[{re.escape(_SIGNS)}]?\d|{_ISO_8601.pattern}")
# Longer than any sane access grant or timeout; guards against overflow on huge numbers.
_MAX = timedelta(days=365)
_MOST_DIGITS = 9  # a number of 10 digits or more is over the limit in any unit
_SHOWN = 24  # characters of a refused token repeated back


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text into a positive timedelta, or raise InvalidInput saying how."""
    cleaned = text.strip()
    shown = echo(cleaned, _SHOWN)
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        raise InvalidInput(f"'{shown}' is not a duration: {_why_not(cleaned)}")
    numbers = [value[:-1].lstrip("0") for value in match.groups() if value]
    if any(len(number) > _MOST_DIGITS for number in numbers):  # spares int() a huge number
        raise InvalidInput(f"'{shown}' is too long: durations are limited to 365 days.")
    seconds = sum(
        int(value[:-1]) * _UNIT_SECONDS[value[-1].lower()] for value in match.groups() if value
    )
    if seconds <= 0:
        raise InvalidInput(f"'{shown}' is not a duration: it must be longer than zero.")
    if seconds > _MAX.total_seconds():
        raise InvalidInput(f"'{shown}' is too long: durations are limited to 365 days.")
    return timedelta(seconds=seconds)


def _why_not(text: str) -> str:
    """The accepted forms, led by what is wrong with `text` when that can be told."""
    forms = f"write a number and a unit (d, h, m, s) with no space, like {ACCEPTED_FORMS}."
    if not text:
        return forms
    if any(c.isdigit() and not c.isascii() for c in text):
        return f"use the digits 0-9; {forms}"
    if text[0] in _SIGNS[1:]:
        return f"it must be longer than zero; {forms}"
    if text[0] == "+":
        return f"leave out the sign; {forms}"
    if _ISO_8601.match(text):
        return f"ISO 8601 durations are not read here; {forms}"
    if text.isdigit():
        return f"the number needs its unit right after it; {forms}"
    return forms


def looks_like_duration(text: str) -> bool:
    """True when a word is meant as a duration: it starts with a digit, a sign and a digit, or
    ISO 8601's `P`. Such a word must parse; it is never taken as the start of a reason."""
    return _LOOKS_LIKE.match(text.strip()) is not None


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way `parse_duration` reads it: `1h30m`, `45m`, `90s` -> `1m30s`."""
    remaining = int(value.total_seconds())
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
