"""Text helpers: mrkdwn escaping, Slack's limits, times and mentions.

Every text the bot sends is cut to Slack's limit here, by `clip`, which never cuts inside a
`<…>` token (a mention, a channel, a link, a date), an `&amp;`-style escape or a character
and the marks joined to it: a message cut short still renders, and never pings half a name.
Lists of people or groups are shortened whole (`clip_list`): "…, <@U7> and 230 more".
"""

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime

from bot.slack.text import mention, mrkdwn

# Slack's documented limits (https://docs.slack.dev/reference/block-kit/blocks and the
# methods' pages): a section or context text, a header, a plain_text label or option, an
# option's value, a button's value, a confirm dialog's text, a message's `text` (chat.update
# refuses more than 4,000 characters; a margin is kept).
SECTION_TEXT_LIMIT = 3000
HEADER_LIMIT = 150
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
CONFIRM_TEXT_LIMIT = 300
MESSAGE_TEXT_LIMIT = 3900
# How long a list of people may grow inside one text before it says "and N more".
LIST_LIMIT = 1200

ELLIPSIS = "…"
_WHOLE = re.compile(r"<[^<>]*>|&(?:[A-Za-z]+|#[0-9]+);")
_ZWJ = "\u200d"


def escape(text: str) -> str:
    """User text for mrkdwn or a message's fallback `text`: no pings, no forged links or
    mentions (`@here` typed out is shown but defused)."""
    return mrkdwn(text)


def clip(text: str, limit: int = SECTION_TEXT_LIMIT) -> str:
    """`text` if it fits in `limit` characters, else its start and `…`, cut before any token,
    escape or joined character that would otherwise be cut in two."""
    if len(text) <= limit:
        return text
    cut = max(limit - len(ELLIPSIS), 0)
    for token in _WHOLE.finditer(text):
        if token.start() >= cut:
            break
        if token.end() > cut:
            cut = token.start()
            break
    while 0 < cut < len(text) and _joined(text[cut - 1], text[cut]):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def _joined(before: str, after: str) -> bool:
    """Whether `after` belongs to the character before it (a combining mark, a variation
    selector, a skin tone, the next part of a ZWJ emoji)."""
    return (
        before == _ZWJ
        or after == _ZWJ
        or unicodedata.category(after) in ("Mn", "Me", "Mc")
        or "\ufe00" <= after <= "\ufe0f"
        or "\U0001f3fb" <= after <= "\U0001f3ff"
    )


def clip_list(items: Sequence[str], *, none: str, limit: int = LIST_LIMIT) -> str:
    """`a, b, c` when it fits in `limit`, else the first items whole and "and N more"."""
    if not items:
        return none
    whole = ", ".join(items)
    if len(whole) <= limit:
        return whole
    shown: list[str] = []
    for index, item in enumerate(items):
        rest = len(items) - index - 1
        tail = f" and {rest} more" if rest else ""
        if len(", ".join([*shown, item])) + len(tail) > limit and shown:
            break
        shown.append(item)
    left = len(items) - len(shown)
    return clip(", ".join(shown) + (f" and {left} more" if left else ""), limit)


def mentions(user_ids: Iterable[str], *, limit: int = LIST_LIMIT) -> str:
    """People as mentions in id order, or "nobody"; a long list says how many it leaves out."""
    return clip_list([mention(u) for u in sorted(user_ids)], none="nobody", limit=limit)


def when(moment: datetime | None) -> str:
    """A Slack date token: every reader sees their own time zone; the fallback is UTC."""
    if moment is None:
        return "—"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def at_time(moment: datetime | None) -> str:
    """A time of day as a Slack date token (`14:05` in each reader's zone), for sentences."""
    if moment is None:
        return "—"
    fallback = moment.strftime("%H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{time}}|{fallback}>"


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text)}}


def context(text: str) -> dict[str, object]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text)}]}


def header(text: str) -> dict[str, object]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_LIMIT)}}


def plain_text(text: str, limit: int) -> dict[str, str]:
    """A plain_text object clipped to the limit of the field it goes in."""
    return {"type": "plain_text", "text": clip(text, limit)}


def option(label: str, value: str, description: str | None = None) -> dict[str, object]:
    """One option of a select or checkboxes: label and description within 75 characters, the
    value within 150."""
    shown: dict[str, object] = {
        "text": plain_text(label, OPTION_TEXT_LIMIT),
        "value": clip(value, OPTION_VALUE_LIMIT),
    }
    if description:
        shown["description"] = plain_text(description, OPTION_TEXT_LIMIT)
    return shown
