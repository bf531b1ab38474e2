"""Checks that what the bot sent Slack can notify nobody through user text.

A special mention notifies when Slack parses it: `<!here>`, `<!channel>`, `<!everyone>` and
`<!subteam^…>` anywhere, and `@here`/`@channel`/`@everyone` written out where Slack reads
mrkdwn (a message's `text`, a topic, a `mrkdwn` text object). `plain_text` is never parsed.
"""

import json
import re
from collections.abc import Iterator
from typing import Any

LIVE_SPECIAL = re.compile(r"<!(?:here|channel|everyone|subteam)", re.IGNORECASE)
PLAIN_SPECIAL = re.compile(r"@(?:here|channel|everyone)\b", re.IGNORECASE)


def _decoded(value: Any) -> Any:
    """Form-encoded API calls carry blocks as JSON text: read them as structures."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def mrkdwn_strings(value: Any) -> Iterator[str]:
    """Every string Slack parses as mrkdwn: message `text`, topics, mrkdwn text objects."""
    value = _decoded(value)
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield value["text"]
        for key, item in value.items():
            item = _decoded(item)
            if key in ("text", "topic") and isinstance(item, str):
                yield item
            elif key != "text" or not isinstance(item, dict) or item.get("type") != "plain_text":
                yield from mrkdwn_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from mrkdwn_strings(item)
    elif isinstance(value, str):
        yield value  # a bare string (an ack, a response) is a message's text


def assert_nothing_pings(sent: Any) -> None:
    """No special mention as markup anywhere, and none written out where mrkdwn is parsed."""
    assert not LIVE_SPECIAL.search(json.dumps(sent, ensure_ascii=False)), sent
    for text in mrkdwn_strings(sent):
        assert not PLAIN_SPECIAL.search(text), text
