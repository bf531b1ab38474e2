"""Incident channel names: `inc-YYYYMMDD-<slug>`, valid for Slack, at most 80 characters."""

import re
import unicodedata
from datetime import datetime

MAX_CHANNEL_NAME = 80
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """ASCII lowercase; accents folded (`café` -> `cafe`); every other run of characters -> `-`."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", folded.lower()).strip("-")


def incident_channel_name(prefix: str, title: str, opened_at: datetime, attempt: int = 1) -> str:
    """The channel name for an incident; `attempt` 2, 3... adds `-2`, `-3` after `name_taken`.

    The suffix is never cut off: the slug is shortened to make room for it.
    """
    day = opened_at.strftime("%Y%m%d")
    suffix = f"-{attempt}" if attempt > 1 else ""
    head = f"{slugify(prefix) or 'inc'}-{day}"
    room = MAX_CHANNEL_NAME - len(head) - 1 - len(suffix)
    slug = slugify(title)[:room].rstrip("-") or "incident"
    return f"{head}-{slug}{suffix}"
