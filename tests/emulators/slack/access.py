"""What the bot may see and touch: channel lookup with Slack's visibility and membership errors."""

from __future__ import annotations

from typing import Any

from .blocks import check_message_blocks, normalize
from .common import JSON, ApiError, Ctx
from .state import Channel

MAX_TEXT = 40_000


def resolve_channel(ctx: Ctx, value: str, *, allow_names: bool = False) -> Channel:
    """A channel the bot can see, by ID (or, where Slack allows it, by name or user ID)."""
    ws = ctx.workspace
    bot = ws.bot_user_id
    channel = ws.visible(value, bot)
    if channel is None and allow_names:
        named = ws.channel_named(value.lstrip("#"))
        if named is not None:
            channel = ws.visible(named.id, bot)
        elif value[:1] in ("U", "W") and value in ws.users:
            channel, _ = ws.open_im(value)
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def writable_channel(ctx: Ctx, value: str, *, allow_names: bool = False) -> Channel:
    """A channel the bot can post in: visible, not archived, and the bot is a member."""
    channel = resolve_channel(ctx, value, allow_names=allow_names)
    if channel.archived:
        raise ApiError("is_archived")
    if ctx.workspace.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    return channel


def message_blocks(ctx: Ctx, name: str = "blocks") -> list[JSON] | None:
    """Parse and check a message's `blocks`; None when absent."""
    if name not in ctx.args or ctx.args[name] is None:
        return None
    raw: Any = ctx.args[name]
    if isinstance(raw, str) and raw.strip() == "":
        return None
    parsed = ctx.json_arg(name, bad_format="invalid_blocks_format")
    if not isinstance(parsed, list):
        raise ApiError("invalid_blocks_format")
    problems = check_message_blocks(parsed, f"/{name}")
    if problems:
        raise ApiError("invalid_blocks", messages=problems)
    return normalize(parsed)


def message_attachments(ctx: Ctx) -> list[JSON] | None:
    if not ctx.has("attachments"):
        return None
    parsed = ctx.json_arg("attachments", bad_format="invalid_attachments")
    if not isinstance(parsed, list) or not all(isinstance(a, dict) for a in parsed):
        raise ApiError("invalid_attachments")
    if len(parsed) > 100:
        raise ApiError("too_many_attachments")
    for index, attachment in enumerate(parsed):
        if "blocks" in attachment:
            problems = check_message_blocks(attachment["blocks"], f"/attachments/{index}/blocks")
            if problems:
                raise ApiError("invalid_attachments", messages=problems)
    return [dict(a, id=i + 1) for i, a in enumerate(parsed)]


def message_content(
    ctx: Ctx, *, text_limit: int = MAX_TEXT
) -> tuple[str | None, list[JSON] | None, list[JSON] | None]:
    """text, blocks and attachments of a chat.* call, with Slack's content errors."""
    text = ctx.str_arg("text")
    markdown = ctx.str_arg("markdown_text")
    blocks = message_blocks(ctx)
    attachments = message_attachments(ctx)
    if markdown is not None:
        if text is not None or blocks:
            raise ApiError("markdown_text_conflict")
        if len(markdown) > 12_000:
            raise ApiError("msg_too_long")
        text = markdown
        blocks = normalize([{"type": "markdown", "text": markdown}])
    if text is not None and len(text) > text_limit:
        raise ApiError("msg_too_long")
    if text is None and not blocks and not attachments:
        raise ApiError("no_text")
    return text, blocks, attachments
