"""conversations.*: create, invite, setTopic, info, archive, join, open, members, history."""

from __future__ import annotations

import base64
import re

from .access import resolve_channel
from .common import JSON, ApiError, Ctx, Handler, invalid_arguments, new_id, split_list
from .state import Channel

_NAME_OK = re.compile(r"^[a-z0-9_\-\u00c0-\uffff]+$")
MAX_NAME = 80
MAX_TOPIC = 250
MAX_INVITES = 100  # the method JSON says 100 (its HTML page says 1000)


def _channel_out(ctx: Ctx, channel: Channel, *, extended: bool = False) -> JSON:
    ws = ctx.workspace
    return channel.to_api(ws.team_id, ws.bot_user_id, extended=extended)


def check_name(name: str) -> None:
    """Slack's channel-name rules, in the order it applies them."""
    if not name.strip():
        raise ApiError("invalid_name_required")
    if len(name) > MAX_NAME:
        raise ApiError("invalid_name_maxlength")
    if not _NAME_OK.match(name):
        raise ApiError("invalid_name_specials")
    if name.strip("-_") == "":
        raise ApiError("invalid_name_punctuation")


def create(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    name = ctx.str_arg("name") or ""
    check_name(name)
    if ws.channel_named(name) is not None:
        raise ApiError("name_taken")
    channel = Channel(
        id=new_id("C"),
        name=name,
        creator=ws.bot_user_id,
        created=ws.now(),
        is_private=ctx.bool_arg("is_private"),
        members=[ws.bot_user_id],
    )
    ws.channels[channel.id] = channel
    out = _channel_out(ctx, channel)
    out["is_member"] = True
    return {"ok": True, "channel": out}


def invite(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    if channel.is_im:
        raise ApiError("method_not_supported_for_channel_type")
    if channel.archived:
        raise ApiError("is_archived")
    if ws.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    users = split_list(ctx.require_str("users"))
    if not users:
        raise ApiError("no_user")
    if len(users) > MAX_INVITES:
        raise ApiError("too_many_users")
    errors: list[JSON] = []
    ok: list[str] = []
    for user_id in users:
        user = ws.users.get(user_id)
        if user_id == ws.bot_user_id:
            code = "cant_invite_self"
        elif user is None or user.deleted:
            code = "user_not_found"
        elif user_id in channel.members or user_id in ok:
            code = "already_in_channel"
        else:
            ok.append(user_id)
            continue
        errors.append({"user": user_id, "ok": False, "error": code})
    if errors and not ctx.bool_arg("force"):
        raise ApiError(errors[0]["error"], extra={"errors": errors})
    for user_id in ok:
        channel.members.append(user_id)
        ws.add_system_message(
            channel, user_id, "channel_join", f"<@{user_id}> has joined the channel"
        )
    out: JSON = {"ok": True, "channel": _channel_out(ctx, channel)}
    if errors:
        out["errors"] = errors
    return out


def set_topic(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    if channel.archived:
        raise ApiError("is_archived")
    if not channel.is_im and ws.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    topic = ctx.str_arg("topic") or ""
    if len(topic) > MAX_TOPIC:
        raise ApiError("too_long")
    channel.topic = {"value": topic, "creator": ws.bot_user_id, "last_set": ws.now()}
    ws.add_system_message(
        channel, ws.bot_user_id, "channel_topic", f"set the channel topic: {topic}"
    )
    return {"ok": True, "channel": _channel_out(ctx, channel)}


def info(ctx: Ctx) -> JSON:
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    out = _channel_out(ctx, channel, extended=True)
    if ctx.bool_arg("include_num_members"):
        out["num_members"] = len(channel.members)
    if ctx.bool_arg("include_locale"):
        out["locale"] = "en-US"
    return {"ok": True, "channel": out}


def archive(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    if channel.is_im:
        raise ApiError("method_not_supported_for_channel_type")
    if channel.archived:
        raise ApiError("already_archived")
    if channel.is_general:
        raise ApiError("cant_archive_general")
    if ws.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    ws.add_system_message(channel, ws.bot_user_id, "channel_archive", "archived the channel")
    channel.archived = True
    return {"ok": True}


def join(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = ws.channels.get(ctx.require_str("channel"))
    if channel is None or (channel.is_private and ws.bot_user_id not in channel.members):
        raise ApiError("channel_not_found")
    if channel.is_im or channel.is_mpim:
        raise ApiError("method_not_supported_for_channel_type")
    if channel.archived:
        raise ApiError("is_archived")
    out: JSON = {"ok": True}
    if ws.bot_user_id in channel.members:
        ctx.warnings.append("already_in_channel")
        out["already_in_channel"] = True
    else:
        channel.members.append(ws.bot_user_id)
        ws.add_system_message(
            channel, ws.bot_user_id, "channel_join", f"<@{ws.bot_user_id}> has joined the channel"
        )
    out["channel"] = _channel_out(ctx, channel)
    return out


def open_(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel_id = ctx.str_arg("channel")
    if channel_id:
        channel = ws.visible(channel_id, ws.bot_user_id)
        if channel is None or not (channel.is_im or channel.is_mpim):
            raise ApiError("channel_not_found")
        created = False
    else:
        users = split_list(ctx.str_arg("users") or "")
        if not users:
            raise ApiError("users_list_not_supplied")
        if len(users) > 8:
            raise ApiError("too_many_users")
        for user_id in users:
            user = ws.users.get(user_id)
            if user is None:
                raise ApiError("user_not_found")
            if user.deleted:
                raise ApiError("user_disabled")
        others = [u for u in dict.fromkeys(users) if u != ws.bot_user_id]
        if not others:
            raise ApiError("not_enough_users")
        if len(others) == 1:
            channel, created = ws.open_im(others[0])
        else:
            channel, created = _open_mpim(ctx, others)
    out: JSON = {"ok": True}
    if not created:
        out.update(no_op=True, already_open=True)
    if ctx.bool_arg("return_im") or channel.is_mpim:
        out["channel"] = _channel_out(ctx, channel)
    else:
        out["channel"] = {"id": channel.id}
    return out


def _open_mpim(ctx: Ctx, others: list[str]) -> tuple[Channel, bool]:
    ws = ctx.workspace
    members = sorted([ws.bot_user_id, *others])
    for channel in ws.channels.values():
        if channel.is_mpim and sorted(channel.members) == members:
            return channel, False
    names = [ws.users[u].name for u in members]
    channel = Channel(
        id=new_id("C"),
        name="mpdm-" + "--".join(names) + "-1",
        creator=ws.bot_user_id,
        created=ws.now(),
        is_private=True,
        is_mpim=True,
        members=members,
    )
    ws.channels[channel.id] = channel
    return channel, True


def _cursor(kind: str, value: str) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _page(ctx: Ctx, items: list[str], kind: str, default_limit: int) -> tuple[list[str], str]:
    raw_limit = ctx.str_arg("limit")
    limit = int(float(raw_limit)) if raw_limit else default_limit
    if limit < 1 or limit > 1000:
        raise ApiError("invalid_limit")
    start = 0
    cursor = ctx.str_arg("cursor")
    if cursor:
        try:
            kind_seen, value = base64.b64decode(cursor).decode().split(":", 1)
            start = items.index(value) if kind_seen == kind else -1
        except ValueError:
            start = -1
        if start < 0:
            raise ApiError("invalid_cursor")
    page = items[start : start + limit]
    rest = items[start + limit : start + limit + 1]
    return page, _cursor(kind, rest[0]) if rest else ""


def members(ctx: Ctx) -> JSON:
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    page, next_cursor = _page(ctx, list(channel.members), "user", 100)
    return {"ok": True, "members": page, "response_metadata": {"next_cursor": next_cursor}}


def history(ctx: Ctx) -> JSON:
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    if ctx.workspace.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    ws = ctx.workspace
    top_level = [m for m in channel.history if not m.thread_ts or m.thread_ts == m.ts]
    newest_first = [m.ts for m in reversed(top_level)]
    page, next_cursor = _page(ctx, newest_first, "ts", 100)
    wanted = set(page)
    messages = [
        _listed(ctx, m.to_api(ws.team_id, ws.bot_profile()))
        for m in reversed(top_level)
        if m.ts in wanted
    ]
    return {
        "ok": True,
        "messages": messages,
        "has_more": bool(next_cursor),
        "pin_count": len(channel.pins),
        "response_metadata": {"next_cursor": next_cursor},
    }


def replies(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    channel = resolve_channel(ctx, ctx.require_str("channel"))
    ts = ctx.str_arg("ts")
    if ts is None:
        raise invalid_arguments("[ERROR] missing required field: ts")
    parent = channel.find(ts)
    if parent is None:
        raise ApiError("thread_not_found")
    root = parent.thread_ts or parent.ts
    thread = [m.ts for m in channel.history if m.ts == root or m.thread_ts == root]
    page, next_cursor = _page(ctx, thread, "ts", 1000)
    wanted = set(page)
    messages = [
        _listed(ctx, m.to_api(ws.team_id, ws.bot_profile()))
        for m in channel.history
        if m.ts in wanted
    ]
    return {
        "ok": True,
        "messages": messages,
        "has_more": bool(next_cursor),
        "response_metadata": {"next_cursor": next_cursor},
    }


def _listed(ctx: Ctx, message: JSON) -> JSON:
    """A message as history and replies list it: its metadata only when asked for with
    `include_all_metadata` (https://api.slack.com/methods/conversations.replies#arg_include_all_metadata,
    https://api.slack.com/methods/conversations.history#arg_include_all_metadata)."""
    if not ctx.bool_arg("include_all_metadata"):
        message.pop("metadata", None)
    return message


HANDLERS: dict[str, Handler] = {
    "conversations.create": create,
    "conversations.invite": invite,
    "conversations.setTopic": set_topic,
    "conversations.info": info,
    "conversations.archive": archive,
    "conversations.join": join,
    "conversations.open": open_,
    "conversations.members": members,
    "conversations.history": history,
    "conversations.replies": replies,
}
