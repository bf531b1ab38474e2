"""The objects Slack's API talks about, each with its Slack-shaped `to_api()` rendering."""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import JSON

SYSTEM_SUBTYPES = frozenset({"channel_join", "channel_topic", "pinned_item", "channel_archive"})


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
            "title": "",
            "phone": "",
            "skype": "",
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": "g0000000000",
            "first_name": self.name,
            "last_name": "",
            "team": self.team_id,
            "image_24": "https://secure.gravatar.com/avatar/0.jpg",
            "image_48": "https://secure.gravatar.com/avatar/0.jpg",
            "image_72": "https://secure.gravatar.com/avatar/0.jpg",
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
            profile["always_active"] = True
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name or self.name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "is_email_confirmed": True,
            "who_can_share_contact_card": "EVERYONE",
        }


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
                out.update(
                    reply_count=self.reply_count,
                    reply_users_count=len(self.reply_users),
                    latest_reply=self.latest_reply,
                    reply_users=list(self.reply_users),
                )
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
                "id": self.id,
                "created": self.created,
                "is_archived": False,
                "is_im": True,
                "is_org_shared": False,
                "context_team_id": team_id,
                "updated": self.created * 1000,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        out: JSON = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "pending_connected_team_ids": [],
            "context_team_id": team_id,
            "updated": self.created * 1000,
            "parent_conversation": None,
            "creator": self.creator,
            "shared_team_ids": [team_id],
            "internal_team_ids": [],
            "is_member": viewer in self.members,
            "last_read": "0000000000.000000",
            "topic": dict(self.topic),
            "purpose": dict(self.purpose),
            "previous_names": [],
            "priority": 0,
            "is_open": True,
        }
        if extended:
            out.update(
                is_read_only=False,
                is_thread_only=False,
                is_non_threadable=False,
                is_moved=0,
                is_global_shared=False,
                is_org_default=False,
                is_org_mandatory=False,
                connected_team_ids=[],
                conversation_host_id=team_id,
                properties={},
            )
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
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": name,
            "title": self.title or name,
            "mimetype": "text/plain",
            "filetype": "text",
            "pretty_type": "Plain Text",
            "user": self.user,
            "user_team": team_id,
            "editable": False,
            "size": len(self.content or b""),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": bool(self.channels),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": url,
            "url_private_download": url.replace("files-pri", "files-pri/dl"),
            "permalink": f"{base_url}/files/{self.user}/{self.id}/{name}",
            "channels": list(self.channels),
            "groups": [],
            "ims": [],
            "has_rich_preview": False,
            "file_access": "visible",
            "alt_txt": self.alt_txt,
        }


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
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "blocks": body.get("blocks", []),
            "private_metadata": body.get("private_metadata", ""),
            "callback_id": body.get("callback_id", ""),
            "state": {"values": {}},
            "hash": self.hash,
            "title": body.get("title"),
            "clear_on_close": bool(body.get("clear_on_close", False)),
            "notify_on_close": bool(body.get("notify_on_close", False)),
            "close": body.get("close"),
            "submit": body.get("submit"),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id,
            "app_id": app_id,
            "external_id": self.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": bot_id,
        }
        if self.type == "modal":
            out["submit_disabled"] = bool(body.get("submit_disabled", False))
        return out
