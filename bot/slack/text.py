"""Slack's text format at the edge: what Slack sends in, and what may safely go back out.

Slack sends command text with `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;`; with
`should_escape` a command also gets mentions, channels and links as markup (`<@U123|linus>`,
`<#C123|general>`, `<https://x|label>`, `<!here>`, `<!subteam^S123|@oncall>`). The domain keeps
readable plain text: `from_slack` turns the markup into what the user saw and decodes the
entities exactly once. Going out, `mrkdwn` makes plain text inert (nothing pings, nothing links),
and `slack_message` shows a message of ours (a `Wording`, which may echo user text): the people
it names as mentions, its words inert. Mention markup is written here and in the blocks, never
by the domain, the services or the application.
"""

import re
from collections.abc import Iterable

from bot.domain.wording import PEOPLE_SEPARATOR, Wording

_ENTITY = re.compile(r"&(amp|lt|gt);")
_DECODED = {"amp": "&", "lt": "<", "gt": ">"}
_MARKUP = re.compile(r"<([^<>]*)>")
_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]{1,31})(?:\|[^<>]*)?>$")
_SPECIAL = ("here", "channel", "everyone")
# "@here" typed as plain text: a word joiner after the `@` keeps it readable and inert.
_SPECIAL_WORD = re.compile(r"@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)
_WORD_JOINER = "\u2060"
_BARE_AMP = re.compile(r"&(?!(?:amp|lt|gt);)")


def decode_entities(text: str) -> str:
    """`&amp;` `&lt;` `&gt;` back to `&` `<` `>`, in one pass: `&amp;lt;` stays `&lt;`."""
    return _ENTITY.sub(lambda match: _DECODED[match.group(1)], text)


def _readable(markup: str) -> str:
    """What Slack shows for one `<…>` token: the label when there is one, never an id."""
    target, _, label = markup.partition("|")
    label = decode_entities(label)
    if target.startswith("@"):
        return "@" + (label.lstrip("@") or "someone")
    if target.startswith("#"):
        return "#" + (label.lstrip("#") or "channel")
    if target.startswith("!subteam^"):
        return "@" + (label.lstrip("@") or "group")
    if target.startswith("!"):
        name = target[1:].split("^", 1)[0]
        if name in _SPECIAL:
            return "@" + name
        return label or name  # e.g. a date token shows its fallback text
    return label or decode_entities(target)  # a link: its label, else the address


def from_slack(text: str) -> str:
    """Command text as Slack sends it -> the plain text the user typed (markup read once)."""
    parts: list[str] = []
    start = 0
    for match in _MARKUP.finditer(text):
        parts.append(decode_entities(text[start : match.start()]))
        parts.append(_readable(match.group(1)))
        start = match.end()
    parts.append(decode_entities(text[start:]))
    return "".join(parts)


_BARE_USER_ID = re.compile(r"^([UW][A-Z0-9]{1,31})$")


def mentioned_user(word: str) -> str | None:
    """The user id of one `<@U123|name>` (or `<@U123>`, or a bare `U123`) word, else None."""
    match = _USER_MENTION.match(word) or _BARE_USER_ID.match(word)
    return match.group(1) if match else None


def defuse_special_mentions(text: str) -> str:
    """`@here`, `@channel`, `@everyone` written out stay readable but can never notify."""
    return _SPECIAL_WORD.sub("@" + _WORD_JOINER, text)


def mrkdwn(text: str) -> str:
    """Plain user text for a mrkdwn field or a message's `text`: no markup, no pings."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return defuse_special_mentions(escaped)


def plain(text: str) -> str:
    """User text for a `plain_text` field. Slack shows it as is and never parses it, but a
    word joiner still breaks up `<!`, so no special-mention markup exists in what we send."""
    return text.replace("<!", "<" + _WORD_JOINER + "!")


def mention(user_id: str) -> str:
    """How Slack shows a person: a mention, which reads as their name and links to them."""
    return f"<@{user_id}>"


def mention_list(user_ids: Iterable[str], *, none: str) -> str:
    """`<@U1>, <@U2>` in id order, or `none` when there is nobody."""
    return PEOPLE_SEPARATOR.join(mention(u) for u in sorted(user_ids)) or none


def slack_message(wording: Wording) -> str:
    """A message of ours for Slack: the people it names as mentions; its words, which may echo
    user text, inert (any `<…>` shown as text, `@here` defused, entities already escaped
    kept), so the only mentions are the ones the message means."""
    return wording.render(text=_inert, person=mention)


def _inert(text: str) -> str:
    escaped = _BARE_AMP.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    return defuse_special_mentions(escaped)
