"""Block Kit as a person reads it: each block in order as plain lines, people and channels by
name, dates as their fallback text, buttons as `[Button]`.

For the gallery (docs/messages.md), so a reviewer can read every message without opening it
in Block Kit Builder, and for end-to-end tests that assert what a person reads rather than the
JSON it is made of. It follows how Slack shows mrkdwn
(https://docs.slack.dev/messaging/formatting-message-text): `<@U…>` as the person's name,
`<#C…>` as the channel's, `<!date^…|fallback>` as a time in the reader's zone (here the
fallback), `<!here>` as @here, and `&lt;` `&gt;` `&amp;` as the characters they escape.
"""

import re
from collections.abc import Mapping
from typing import Any

_USER = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]*)(?:\|([^>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")


def read_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """One mrkdwn text as it reads: tokens resolved, bold and italics marks dropped."""
    names = names or {}
    text = _USER.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or names.get(m.group(1), m.group(1))), text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    text = _DATE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def read_blocks(blocks: list[dict[str, Any]], names: Mapping[str, str] | None = None) -> str:
    """Blocks as they read, one block after another."""
    return "\n".join(line for block in blocks for line in _block(block, names or {}))


def read_view(view: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    """A modal (its title, blocks, then its Submit and Close buttons) or App Home."""
    names = names or {}
    lines = []
    if "title" in view:
        lines.append(f"== {_plain(view['title'])} ==")
    lines.append(read_blocks(list(view.get("blocks", [])), names))
    buttons = [_plain(view[key]) for key in ("submit", "close") if key in view]
    if buttons:
        lines.append(" ".join(f"[{label}]" for label in buttons))
    return "\n".join(lines)


def read_message(
    text: str, blocks: list[dict[str, Any]] | None, names: Mapping[str, str] | None = None
) -> str:
    """A message as it reads: its blocks, or its text when it has none."""
    return read_blocks(blocks, names) if blocks else read_text(text, names)


def _block(block: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [f"# {_plain(block['text'])}"]
    if kind == "divider":
        return ["---"]
    if kind == "section":
        lines = [read_text(_plain(block["text"]), names)] if "text" in block else []
        lines += [read_text(_plain(f), names) for f in block.get("fields", [])]
        if "accessory" in block:
            lines.append(_element(block["accessory"]))
        return lines
    if kind == "context":
        parts = [read_text(_plain(e), names) for e in block.get("elements", []) if "text" in e]
        return ["› " + " · ".join(parts)]
    if kind == "actions":
        return [" ".join(_element(e) for e in block.get("elements", []))]
    if kind == "input":
        optional = " (optional)" if block.get("optional") else ""
        asked = _plain(block["label"]) + optional
        colon = "" if asked.endswith("?") else ":"
        label = f"{asked}{colon} {_element(block['element'])}"
        hint = f"\n› {_plain(block['hint'])}" if "hint" in block else ""
        return [label + hint]
    return [f"[{kind}]"]


def _element(element: Mapping[str, Any]) -> str:
    """A button as `[Label]`; a select or checkboxes with what it offers."""
    kind = element.get("type")
    if kind == "button":
        return f"[{_plain(element['text'])}]"
    options = [_plain(o["text"]) for o in element.get("options", [])]
    if kind == "checkboxes":
        return " ".join(f"[ ] {o}" for o in options)
    if options:
        return f"[{' | '.join(options)} ▾]"
    if kind == "plain_text_input":
        return "[text]"
    return f"[{kind}]"


def _plain(text: Any) -> str:
    return str(text.get("text", "")) if isinstance(text, Mapping) else str(text)
