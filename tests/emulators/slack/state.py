"""Workspace state: users, channels and their messages, files, views, triggers, response URLs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .common import JSON, new_id, random_token

TRIGGER_TTL = 3.0  # seconds a trigger_id stays exchangeable
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5
SYSTEM_SUBTYPES = frozenset({"channel_join", "channel_topic", "pinned_item", "channel_archive"})


class Clock:
    """Wall time plus an offset tests can move forward (trigger and response_url expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class User:
    id: str
    name: str
    team_id: str
    email: str | None = None
    is_bot: bool = False
    real_name: str = ""
    deleted: bool = False
    bot_id: str | None = None

    def to_api(self) -> JSON:
        profile: JSON = {
            "real_name": self.real_name or self.name,
            "real_name_normalized": self.real_name or self.name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "title": "", "phone": "", "skype": "", "status_text": "", "status_emoji": "",
            "status_expiration": 0, "avatar_hash": "g0000000000", "first_name": self.name,
            "last_name": "", "team": self.team_id,
            "image_24": "https://secure.gravatar.com/avatar/0.jpg",
            "image_48": "https://secure.gravatar.com/avatar/0.jpg",
            "image_72": "https://secure.gravatar.com/avatar/0.jpg",
        }  # fmt: skip
        if self.email is not None:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
            profile["always_active"] = True
        return {
            "id": self.id, "team_id": self.team_id, "name": self.name, "deleted": self.deleted,
            "color": "9f69e7", "real_name": self.real_name or self.name, "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time", "tz_offset": 0, "profile": profile,
            "is_admin": False, "is_owner": False, "is_primary_owner": False,
            "is_restricted": False, "is_ultra_restricted": False, "is_bot": self.is_bot,
            "is_app_user": False, "updated": 1700000000, "is_email_confirmed": True,
            "who_can_share_contact_card": "EVERYONE",
        }  # fmt: skip


@dataclass
class Message:
    ts: str
    channel: str
    user: str
    text: str
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    thread_ts: str | None = None
    subtype: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    files: list[JSON] | None = None
    edited: JSON | None = None
    reply_users: list[str] = field(default_factory=list)
    reply_count: int = 0
    latest_reply: str | None = None
    parent_user_id: str | None = None
    metadata: JSON | None = None

    @property
    def is_system(self) -> bool:
        return self.subtype in SYSTEM_SUBTYPES

    def to_api(self, team_id: str, bot_profile: JSON | None = None) -> JSON:
        out: JSON = {"user": self.user, "type": "message", "ts": self.ts}
        if self.subtype:
            out["subtype"] = self.subtype
        if self.bot_id:
            out["bot_id"] = self.bot_id
            out["app_id"] = self.app_id
        out["text"] = self.text
        out["team"] = team_id
        if self.bot_id and bot_profile is not None:
            out["bot_profile"] = bot_profile
        if self.edited:
            out["edited"] = dict(self.edited)
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.files:
            out["files"] = self.files
            out["upload"] = False
            out["display_as_bot"] = False
        if self.metadata:
            out["metadata"] = self.metadata
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
            if self.thread_ts == self.ts:
                out.update(reply_count=self.reply_count, reply_users_count=len(self.reply_users),
                           latest_reply=self.latest_reply, reply_users=list(self.reply_users))  # fmt: skip
            elif self.parent_user_id:
                out["parent_user_id"] = self.parent_user_id
        return out


@dataclass
class Ephemeral:
    message_ts: str
    channel: str
    user: str  # the one person who sees it
    text: str
    blocks: list[JSON] | None = None
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"  # or "response_url"


@dataclass
class Channel:
    id: str
    name: str
    creator: str
    created: int
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    is_general: bool = False
    members: list[str] = field(default_factory=list)
    archived: bool = False
    topic: JSON = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    purpose: JSON = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    pins: list[str] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    im_user: str | None = None

    def find(self, ts: str) -> Message | None:
        return next((m for m in self.history if m.ts == ts), None)

    def to_api(self, team_id: str, viewer: str, *, extended: bool = False) -> JSON:
        if self.is_im:
            return {
                "id": self.id, "created": self.created, "is_archived": False, "is_im": True,
                "is_org_shared": False, "context_team_id": team_id, "updated": self.created * 1000,
                "user": self.im_user, "is_user_deleted": False, "priority": 0,
            }  # fmt: skip
        out: JSON = {
            "id": self.id, "name": self.name, "is_channel": not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim, "is_im": False,
            "is_mpim": self.is_mpim, "is_private": self.is_private, "created": self.created,
            "is_archived": self.archived, "is_general": self.is_general, "unlinked": 0,
            "name_normalized": self.name, "is_shared": False, "is_org_shared": False,
            "is_ext_shared": False, "is_pending_ext_shared": False, "pending_shared": [],
            "pending_connected_team_ids": [], "context_team_id": team_id,
            "updated": self.created * 1000, "parent_conversation": None, "creator": self.creator,
            "shared_team_ids": [team_id], "internal_team_ids": [], "is_member": viewer in self.members,
            "last_read": "0000000000.000000", "topic": dict(self.topic),
            "purpose": dict(self.purpose), "previous_names": [], "priority": 0, "is_open": True,
        }  # fmt: skip
        if extended:
            out.update(is_read_only=False, is_thread_only=False, is_non_threadable=False,
                       is_moved=0, is_global_shared=False, is_org_default=False,
                       is_org_mandatory=False, connected_team_ids=[], conversation_host_id=team_id,
                       properties={})  # fmt: skip
        return out


@dataclass
class UploadedFile:
    id: str
    filename: str
    length: int
    user: str
    created: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    title: str | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)

    def to_api(self, team_id: str, base_url: str) -> JSON:
        name = self.filename
        url = f"{base_url}/files-pri/{team_id}-{self.id}/{name}"
        return {
            "id": self.id, "created": self.created, "timestamp": self.created, "name": name,
            "title": self.title or name, "mimetype": "text/plain", "filetype": "text",
            "pretty_type": "Plain Text", "user": self.user, "user_team": team_id,
            "editable": False, "size": len(self.content or b""), "mode": "hosted",
            "is_external": False, "external_type": "", "is_public": bool(self.channels),
            "public_url_shared": False, "display_as_bot": False, "username": "",
            "url_private": url, "url_private_download": url.replace("files-pri", "files-pri/dl"),
            "permalink": f"{base_url}/files/{self.user}/{self.id}/{name}",
            "channels": list(self.channels), "groups": [], "ims": [], "has_rich_preview": False,
            "file_access": "visible", "alt_txt": self.alt_txt,
        }  # fmt: skip


@dataclass
class View:
    id: str
    team_id: str
    user_id: str
    type: str
    body: JSON  # title, blocks, callback_id... as normalized
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    external_id: str = ""
    closed: bool = False

    def to_api(self, app_id: str, bot_id: str) -> JSON:
        body = self.body
        out: JSON = {
            "id": self.id, "team_id": self.team_id, "type": self.type,
            "blocks": body.get("blocks", []), "private_metadata": body.get("private_metadata", ""),
            "callback_id": body.get("callback_id", ""), "state": {"values": {}},
            "hash": self.hash, "title": body.get("title"),
            "clear_on_close": bool(body.get("clear_on_close", False)),
            "notify_on_close": bool(body.get("notify_on_close", False)),
            "close": body.get("close"), "submit": body.get("submit"),
            "previous_view_id": self.previous_view_id, "root_view_id": self.root_view_id,
            "app_id": app_id, "external_id": self.external_id, "app_installed_team_id": self.team_id,
            "bot_id": bot_id,
        }  # fmt: skip
        if self.type == "modal":
            out["submit_disabled"] = bool(body.get("submit_disabled", False))
        return out


@dataclass
class Trigger:
    id: str
    user_id: str
    issued_at: float
    view_id: str | None = None  # set when the interaction came from a modal
    used: bool = False


@dataclass
class ResponsePost:
    body: JSON
    status: int
    at: float


@dataclass
class ResponseUrl:
    id: str
    user_id: str
    channel_id: str | None
    issued_at: float
    message_ts: str | None = None
    is_ephemeral: bool = False
    posts: list[ResponsePost] = field(default_factory=list)


@dataclass
class UserGroup:
    id: str
    handle: str
    name: str
    users: list[str]
    disabled: bool = False


@dataclass
class Workspace:
    team_id: str
    team_domain: str
    team_name: str
    bot_user_id: str
    bot_id: str
    app_id: str
    bot_name: str
    clock: Clock = field(default_factory=Clock)
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    home_tabs: dict[str, View] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    response_urls: dict[str, ResponseUrl] = field(default_factory=dict)
    usergroups: dict[str, UserGroup] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _last_ts: int = 0

    def next_ts(self) -> str:
        """Message timestamps: "<unix seconds>.<6 digits>", unique and increasing."""
        with self.lock:
            micros = max(int(self.clock.now() * 1_000_000), self._last_ts + 1)
            self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def now(self) -> int:
        return int(self.clock.now())

    def bot_profile(self) -> JSON:
        icons = {f"image_{n}": f"https://a.slack-edge.com/80588/img/plugins/app/bot_{n}.png"
                 for n in (36, 48, 72)}  # fmt: skip
        return {"id": self.bot_id, "deleted": False, "name": self.bot_name, "updated": 1700000000,
                "app_id": self.app_id, "icons": icons, "team_id": self.team_id,
                "user_id": self.bot_user_id}  # fmt: skip

    def channel_named(self, name: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def visible(self, channel_id: str, viewer: str) -> Channel | None:
        """The channel as `viewer` can see it: private ones only for members."""
        channel = self.channels.get(channel_id)
        if channel is None or (channel.is_private or channel.is_im) and viewer not in channel.members:
            return None
        return channel

    def open_im(self, user_id: str) -> tuple[Channel, bool]:
        for channel in self.channels.values():
            if channel.is_im and channel.im_user == user_id:
                return channel, False
        channel = Channel(id=new_id("D"), name=user_id, creator=self.bot_user_id,
                          created=self.now(), is_im=True, members=[self.bot_user_id, user_id],
                          im_user=user_id)  # fmt: skip
        self.channels[channel.id] = channel
        return channel, True

    def add_system_message(self, channel: Channel, user: str, subtype: str, text: str) -> None:
        channel.history.append(
            Message(ts=self.next_ts(), channel=channel.id, user=user, text=text, subtype=subtype)
        )

    def issue_trigger(self, user_id: str, view_id: str | None = None) -> str:
        trigger = Trigger(
            id=f"{int(self.clock.now() * 1000) % 10**10}.{self.team_id[1:]}{len(self.triggers)}"
            f".{random_token(32).lower()}",
            user_id=user_id,
            issued_at=self.clock.now(),
            view_id=view_id,
        )
        with self.lock:
            self.triggers[trigger.id] = trigger
        return trigger.id

    def issue_response_url(
        self, base_url: str, user_id: str, channel_id: str | None, message_ts: str | None = None,
        *, is_ephemeral: bool = False,
    ) -> str:  # fmt: skip
        url_id = f"{self.team_id}/{len(self.response_urls) + 1}/{random_token(24)}"
        record = ResponseUrl(id=url_id, user_id=user_id, channel_id=channel_id,
                             issued_at=self.clock.now(), message_ts=message_ts,
                             is_ephemeral=is_ephemeral)  # fmt: skip
        with self.lock:
            self.response_urls[url_id] = record
        return f"{base_url}/response/{url_id}"

    def new_view_hash(self) -> str:
        return f"{int(self.clock.now())}.{random_token(8)}"

    def to_user(self, user_id: str) -> Any:
        return self.users.get(user_id)
