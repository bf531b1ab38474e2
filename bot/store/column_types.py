"""Column types that keep the database's representation out of the domain objects."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Dialect, Integer, Text
from sqlalchemy.types import TypeDecorator

_ONE_SECOND = timedelta(seconds=1)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns timezone-aware UTC, even from SQLite, which keeps no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store naive datetime {value!r}: times must be aware")
        in_utc = value.astimezone(UTC)
        return in_utc.replace(tzinfo=None) if dialect.name == "sqlite" else in_utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Seconds(TypeDecorator[timedelta]):
    """A duration as a whole number of seconds."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: timedelta | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if value % _ONE_SECOND:
            raise ValueError(f"refusing to store {value!r}: durations are whole seconds")
        return value // _ONE_SECOND

    def process_result_value(self, value: int | None, dialect: Dialect) -> timedelta | None:
        return None if value is None else timedelta(seconds=value)


class JsonStringSet(TypeDecorator[frozenset[str]]):
    """A set of strings as a sorted JSON list in a TEXT column."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: frozenset[str] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(sorted(value), separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: Dialect) -> frozenset[str] | None:
        if value is None:
            return None
        items = json.loads(value)
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(f"expected a JSON list of strings, got {value!r}")
        return frozenset(items)


class JsonGroupMap(TypeDecorator[dict[str, frozenset[str]]]):
    """Named sets of strings as a JSON object of sorted lists in a TEXT column; NULL is empty."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if not value:
            return None
        return json.dumps(
            {name: sorted(members) for name, members in value.items()},
            separators=(",", ":"),
            sort_keys=True,
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> dict[str, frozenset[str]]:
        if value is None:
            return {}
        found = json.loads(value)
        if not isinstance(found, dict) or not all(
            isinstance(members, list) and all(isinstance(m, str) for m in members)
            for members in found.values()
        ):
            raise ValueError(f"expected a JSON object of string lists, got {value!r}")
        return {str(name): frozenset(members) for name, members in found.items()}
