"""chat.*: postMessage, update, postEphemeral, delete, getPermalink; pins.add/remove/list."""

from __future__ import annotations

from .access import message_content, resolve_channel, writable_channel
from .common import JSON, ApiError, Ctx, Handler
from .state import Ephemeral, Message

UPDATE_TEXT_LIMIT = 4_000
MAX_PINS = 100


def _out(ctx: Ctx, message: Message) -> JSON:
    ws = ctx.workspace
    return message.to_api(ws.team_id, ws.bot_profile())


def post_message(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = writable_channel(ctx, ctx.require_str("channel"), allow_names=True)
    text, blocks, attachments = message_content(ctx)
    thread_ts = ctx.str_arg("thread_ts")
    parent = None
    if thread_ts is not None:
        parent = channel.find(thread_ts)
        if parent is not None and parent.thread_ts and parent.thread_ts != parent.ts:
            thread_ts = parent.thread_ts  # a reply to a reply lands in the parent's thread
            parent = channel.find(thread_ts)
    metadata = ctx.json_arg("metadata", bad_format="invalid_metadata_format")
    if metadata is not None and (not isinstance(metadata, dict) or "event_type" not in metadata):
        raise ApiError("invalid_metadata_format")
    message = Message(
        ts=ws.next_ts(),
        channel=channel.id,
        user=ws.bot_user_id,
        text=text or "",
        blocks=blocks,
        attachments=attachments,
        thread_ts=thread_ts,
        bot_id=ws.bot_id,
        app_id=ws.app_id,
        metadata=metadata,
    )
    if parent is not None and thread_ts is not None:
        parent.thread_ts = parent.ts
        parent.reply_count += 1
        parent.latest_reply = message.ts
        if ws.bot_user_id not in parent.reply_users:
            parent.reply_users.append(ws.bot_user_id)
        message.parent_user_id = parent.user
    channel.history.append(message)
    return {"ok": True, "channel": channel.id, "ts": message.ts, "message": _out(ctx, message)}


def update(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    message = channel.find(ctx.require_str("ts"))
    if message is None or message.is_system:
        raise ApiError("message_not_found")
    if message.user != ws.bot_user_id:
        raise ApiError("cant_update_message")
    if channel.archived:
        raise ApiError("is_archived")
    has_blocks = "blocks" in ctx.args and ctx.args["blocks"] is not None
    has_attachments = "attachments" in ctx.args and ctx.args["attachments"] is not None
    if (
        not ctx.has("text")
        and not has_blocks
        and not has_attachments
        and not ctx.has("markdown_text")
    ):
        raise ApiError("no_text")
    text, blocks, attachments = _update_content(ctx)
    if text is not None:
        message.text = text
    if has_blocks or ctx.has("markdown_text"):
        message.blocks = blocks or None
    if has_attachments:
        message.attachments = attachments or None
    message.edited = {"user": ws.bot_user_id, "ts": ws.next_ts()}
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": _out(ctx, message),
    }


def _update_content(ctx: Ctx) -> tuple[str | None, list[JSON] | None, list[JSON] | None]:
    try:
        return message_content(ctx, text_limit=UPDATE_TEXT_LIMIT)
    except ApiError as error:
        if error.error == "no_text":  # an explicit empty blocks list clears the blocks
            return ctx.str_arg("text"), [], []
        raise


def post_ephemeral(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    user_id = ctx.require_str("user")
    channel_arg = ctx.require_str("channel")
    channel = resolve_channel(ctx, channel_arg, allow_names=True)
    if channel.archived:
        raise ApiError("is_archived")
    if not channel.is_im and ws.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    if user_id not in channel.members:
        raise ApiError("user_not_in_channel")
    text, blocks, _ = message_content(ctx)
    message_ts = ws.next_ts()
    ws.ephemerals.append(
        Ephemeral(
            message_ts=message_ts,
            channel=channel.id,
            user=user_id,
            text=text or "",
            blocks=blocks,
            thread_ts=ctx.str_arg("thread_ts"),
        )
    )
    return {"ok": True, "message_ts": message_ts}


def delete(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    message = channel.find(ctx.require_str("ts"))
    if message is None:
        raise ApiError("message_not_found")
    if message.user != ws.bot_user_id:
        raise ApiError("cant_delete_message")
    if channel.archived:
        raise ApiError("is_archived")
    channel.history.remove(message)
    if message.ts in channel.pins:
        channel.pins.remove(message.ts)
    return {"ok": True, "channel": channel.id, "ts": message.ts}


def get_permalink(ctx: Ctx) -> JSON:
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    ts = ctx.require_str("message_ts")
    if channel.find(ts) is None:
        raise ApiError("message_not_found")
    domain = ctx.workspace.team_domain
    link = f"https://{domain}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
    return {"ok": True, "channel": channel.id, "permalink": link}


def pins_add(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    ts = ctx.str_arg("timestamp")
    if ts is None:
        raise ApiError("no_item_specified")
    if channel.archived:
        raise ApiError("is_archived")
    if not channel.is_im and ws.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    message = channel.find(ts)
    if message is None or message.is_system:
        raise ApiError("message_not_found")
    if ts in channel.pins:
        raise ApiError("already_pinned")
    if len(channel.pins) >= MAX_PINS:
        raise ApiError("too_many_pins")
    channel.pins.append(ts)
    ws.add_system_message(
        channel,
        ws.bot_user_id,
        "pinned_item",
        f"<@{ws.bot_user_id}> pinned a message to this channel.",
    )
    return {"ok": True}


def pins_remove(ctx: Ctx) -> JSON:
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    ts = ctx.str_arg("timestamp")
    if ts is None:
        raise ApiError("no_item_specified")
    if ts not in channel.pins:
        raise ApiError("no_pin")
    channel.pins.remove(ts)
    return {"ok": True}


def pins_list(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    items = []
    for ts in channel.pins:
        message = channel.find(ts)
        if message is not None:
            items.append(
                {
                    "type": "message",
                    "created": ws.now(),
                    "created_by": ws.bot_user_id,
                    "channel": channel.id,
                    "message": _out(ctx, message),
                }
            )
    return {"ok": True, "items": items}


HANDLERS: dict[str, Handler] = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.postEphemeral": post_ephemeral,
    "chat.delete": delete,
    "chat.getPermalink": get_permalink,
    "pins.add": pins_add,
    "pins.remove": pins_remove,
    "pins.list": pins_list,
}
