"""Text helpers: mrkdwn escaping, Slack's limits, times and mentions."""

from collections.abc import Iterable
from datetime import datetime

from bot.slack.text import mention_list, mrkdwn

SECTION_TEXT_LIMIT = 3000
MESSAGE_TEXT_LIMIT = 3900


def escape(text: str) -> str:
    """User text for mrkdwn or a message's fallback `text`: no pings, no forged links or
    mentions (`@here` typed out is shown but defused)."""
    return mrkdwn(text)


def clip(text: str, limit: int = SECTION_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mentions(user_ids: Iterable[str]) -> str:
    return mention_list(user_ids, none="nobody")


def when(moment: datetime | None) -> str:
    """A Slack date token: every reader sees their own time zone; the fallback is UTC."""
    if moment is None:
        return "—"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text)}}


def context(text: str) -> dict[str, object]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text)}]}


def header(text: str) -> dict[str, object]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150)}}
