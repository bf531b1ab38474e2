"""Durations as people type them: `90s`, `45m`, `2h`, `1h30m`, `1d`."""

import re
from datetime import timedelta

from bot.domain.errors import InvalidInput

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
# Longer than any sane access grant or timeout; guards against overflow on huge numbers.
_MAX = timedelta(days=365)


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text into a positive timedelta, or raise InvalidInput."""
    cleaned = text.strip().lower()
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None or not any(match.groups()):
        raise InvalidInput(
            f"'{text}' is not a duration: use a number with a unit, like 90s, 45m, 2h or 1h30m"
        )
    seconds = sum(
        int(value) * _UNIT_SECONDS[unit]
        for value, unit in zip(match.groups(), "dhms", strict=True)
        if value is not None
    )
    if seconds <= 0:
        raise InvalidInput(f"'{text}' is not a duration: it must be longer than zero")
    if seconds > _MAX.total_seconds():
        raise InvalidInput(f"'{text}' is too long: durations are limited to 365 days")
    return timedelta(seconds=seconds)


def looks_like_duration(text: str) -> bool:
    """True when `text` parses as a duration (used to tell `[duration]` from the reason)."""
    try:
        parse_duration(text)
    except InvalidInput:
        return False
    return True


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
