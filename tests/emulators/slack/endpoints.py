"""Non-API endpoints the emulator serves (the file upload URL, interaction response_urls) and
what Slack does with a view_submission ack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs

from .blocks import check_message_blocks, check_view, normalize
from .common import random_token
from .state import (
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    Ephemeral,
    Message,
    ResponsePost,
    View,
    Workspace,
)


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def _json_reply(status: int, body: object) -> Reply:
    return Reply(status, json.dumps(body).encode(), "application/json; charset=utf-8")


def upload(workspace: Workspace, file_id: str, raw: bytes, content_type: str) -> Reply:
    """`files.getUploadURLExternal`'s upload_url: the bytes, exactly `length` of them."""
    with workspace.lock:
        file = workspace.files.get(file_id)
        if file is None or file.completed:
            return Reply(404, b"Not Found")
        data = raw
        if content_type.startswith("multipart/form-data"):
            return Reply(400, b"multipart uploads are not modelled; POST the raw bytes")
        if len(data) != file.length:
            return Reply(400, f"length mismatch: expected {file.length}, got {len(data)}".encode())
        file.content = data
    return Reply(200, f"OK - {len(data)}".encode())


def response_url(workspace: Workspace, url_id: str, raw: bytes, content_type: str) -> Reply:
    """A post to an interaction's response_url: ephemeral/in_channel, replace or delete."""
    with workspace.lock:
        record = workspace.response_urls.get(url_id)
        if record is None:
            return _json_reply(404, {"ok": False, "error": "no_such_url"})
        try:
            if content_type.startswith("application/x-www-form-urlencoded"):
                body = json.loads(parse_qs(raw.decode())["payload"][0])
            else:
                body = json.loads(raw or b"null")
        except (ValueError, KeyError):
            body = None
        now = workspace.clock.now()
        reply = _apply(workspace, record.id, body, now)
        record.posts.append(
            ResponsePost(
                body=body if isinstance(body, dict) else {"raw": raw.decode(errors="replace")},
                status=reply.status,
                at=now,
            )
        )
        return reply


def _apply(workspace: Workspace, url_id: str, body: object, now: float) -> Reply:
    record = workspace.response_urls[url_id]
    if now - record.issued_at > RESPONSE_URL_TTL:
        return _json_reply(404, {"ok": False, "error": "expired_url"})
    if sum(1 for p in record.posts if p.status == 200) >= RESPONSE_URL_USES:
        return _json_reply(404, {"ok": False, "error": "used_url"})
    if not isinstance(body, dict):
        return _json_reply(400, {"ok": False, "error": "invalid_payload"})
    channel = workspace.channels.get(record.channel_id or "")
    original = channel.find(record.message_ts) if channel and record.message_ts else None
    if _true(body.get("delete_original")):
        if record.is_ephemeral:
            workspace.ephemerals = [
                e for e in workspace.ephemerals if e.message_ts != record.message_ts
            ]
        elif channel is not None and original is not None:
            channel.history.remove(original)
        return _json_reply(200, {"ok": True})
    text = body.get("text")
    blocks = body.get("blocks")
    if not text and not blocks and not body.get("attachments"):
        return _json_reply(400, {"ok": False, "error": "no_text"})
    if blocks is not None:
        problems = check_message_blocks(blocks)
        if problems:
            return _json_reply(
                400,
                {
                    "ok": False,
                    "error": "invalid_blocks",
                    "response_metadata": {"messages": problems},
                },
            )
        blocks = normalize(blocks)
    if _true(body.get("replace_original")) and record.message_ts:
        if record.is_ephemeral:
            for ephemeral in workspace.ephemerals:
                if ephemeral.message_ts == record.message_ts:
                    ephemeral.text, ephemeral.blocks = str(text or ""), blocks
        elif original is not None:
            original.text, original.blocks = str(text or ""), blocks
            original.edited = {"user": workspace.bot_user_id, "ts": workspace.next_ts()}
        return _json_reply(200, {"ok": True})
    ts = workspace.next_ts()
    if body.get("response_type") == "in_channel" and channel is not None:
        channel.history.append(
            Message(
                ts=ts,
                channel=channel.id,
                user=workspace.bot_user_id,
                text=str(text or ""),
                blocks=blocks,
                thread_ts=body.get("thread_ts"),
                bot_id=workspace.bot_id,
                app_id=workspace.app_id,
            )
        )
    else:
        workspace.ephemerals.append(
            Ephemeral(
                message_ts=ts,
                channel=record.channel_id or "",
                user=record.user_id,
                text=str(text or ""),
                blocks=blocks,
                source="response_url",
            )
        )
    return _json_reply(200, {"ok": True})


def _true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def apply_view_ack(workspace: Workspace, view: View, ack: object) -> list[str]:
    """Slack's reading of a view_submission ack: close, clear, update, push or show errors."""
    action = ack.get("response_action") if isinstance(ack, dict) else None
    with workspace.lock:
        if action is None:  # an empty ack closes this view
            view.closed = True
        elif action == "clear":  # ...and "clear" closes the whole stack
            for other in [view, *workspace.views.values()]:
                if other.root_view_id == view.root_view_id:
                    other.closed = True
        elif action in ("update", "push") and isinstance(ack, dict):
            problems = check_view(ack.get("view"), ("modal",))
            if problems:
                return problems
            new_body = dict(ack["view"], blocks=normalize(ack["view"].get("blocks", [])))
            if action == "update":
                view.body, view.hash = new_body, workspace.new_view_hash()
            else:
                pushed = View(
                    id="V0" + random_token(9).upper(),
                    team_id=workspace.team_id,
                    user_id=view.user_id,
                    type="modal",
                    body=new_body,
                    hash=workspace.new_view_hash(),
                    root_view_id=view.root_view_id,
                    previous_view_id=view.id,
                )
                workspace.views[pushed.id] = pushed
    return []
