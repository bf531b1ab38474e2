"""A slash command's `text` as Slack sends it, from what the user typed.

Slack's rules (https://api.slack.com/interactivity/slash-commands, "Escaping channels, users,
and links sent to your app", the manifest's `should_escape`; and
https://api.slack.com/reference/surfaces/formatting#escaping for the entities):

- Always: `&`, `<` and `>` typed by the user arrive as `&amp;`, `&lt;` and `&gt;`.
- With `should_escape: true`: a mention of a user arrives as `<@U123|name>`, of a channel as
  `<#C123|name>`, of a user group as `<!subteam^S123|@handle>`; `@here`, `@channel` and
  `@everyone` as `<!here>`, `<!channel>`, `<!everyone>`; a URL wrapped as `<https://…>`.
- With `should_escape: false`: mentions and links arrive as typed (`@linus`, `#general`).

A caller writes the text the way a person types it, naming people, channels and groups by
their names in the emulated workspace (`@linus`, `#general`, `@oncall`); unknown names stay
text, as in Slack.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from .state import Workspace

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "slack-app-manifest.yaml"

_SPECIAL = ("here", "channel", "everyone")
_TOKEN = re.compile(
    r"(?<![\w@#])(?:(?P<sigil>[@#])(?P<name>[\w][\w.\-]*[\w]|[\w])|(?P<url>https?://[^\s<>]+))"
)


def entity_escape(typed: str) -> str:
    return typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def as_slack_sends(typed: str, *, should_escape: bool, workspace: Workspace) -> str:
    """`typed` -> the `text` field Slack posts for a command with this `should_escape`."""
    escaped = entity_escape(typed)
    if not should_escape:
        return escaped

    def markup(match: re.Match[str]) -> str:
        if match.group("url"):
            return f"<{match.group('url')}>"
        sigil, name = match.group("sigil"), match.group("name")
        if sigil == "#":
            channel = workspace.channel_named(name)
            return f"<#{channel.id}|{channel.name}>" if channel else match.group(0)
        if name in _SPECIAL:
            return f"<!{name}>"
        group = next((g for g in workspace.usergroups.values() if g.handle == name), None)
        if group is not None:
            return f"<!subteam^{group.id}|@{group.handle}>"
        user = next((u for u in workspace.users.values() if u.name == name), None)
        return f"<@{user.id}|{user.name}>" if user else match.group(0)

    return _TOKEN.sub(markup, escaped)


@cache
def manifest_escaping() -> dict[str, bool]:
    """Each command's `should_escape` in the app's manifest (Slack's default is false)."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    return {
        command["command"]: bool(command.get("should_escape", False))
        for command in manifest["features"]["slash_commands"]
    }
