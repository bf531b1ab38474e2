"""Workspace state: users, channels and their messages, files, views, triggers, response URLs.

The API objects live in `models`; they are re-exported here."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from .common import JSON, new_id, random_token
from .models import Channel, Ephemeral, Message, UploadedFile, User, View

TRIGGER_TTL = 3.0  # seconds a trigger_id stays exchangeable
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5


class Clock:
    """Wall time plus an offset tests can move forward (trigger and response_url expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


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
        icons = {
            f"image_{n}": f"https://a.slack-edge.com/80588/img/plugins/app/bot_{n}.png"
            for n in (36, 48, 72)
        }
        return {
            "id": self.bot_id,
            "deleted": False,
            "name": self.bot_name,
            "updated": 1700000000,
            "app_id": self.app_id,
            "icons": icons,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
        }

    def channel_named(self, name: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def visible(self, channel_id: str, viewer: str) -> Channel | None:
        """The channel as `viewer` can see it: private ones only for members."""
        channel = self.channels.get(channel_id)
        if channel is None or (
            (channel.is_private or channel.is_im) and viewer not in channel.members
        ):
            return None
        return channel

    def open_im(self, user_id: str) -> tuple[Channel, bool]:
        for channel in self.channels.values():
            if channel.is_im and channel.im_user == user_id:
                return channel, False
        channel = Channel(
            id=new_id("D"),
            name=user_id,
            creator=self.bot_user_id,
            created=self.now(),
            is_im=True,
            members=[self.bot_user_id, user_id],
            im_user=user_id,
        )
        self.channels[channel.id] = channel
        return channel, True

    def add_system_message(self, channel: Channel, user: str, subtype: str, text: str) -> None:
        channel.history.append(
            Message(ts=self.next_ts(), channel=channel.id, user=user, text=text, subtype=subtype)
        )

    def issue_trigger(self, user_id: str, view_id: str | None = None) -> str:
        # Slack's shape: "<digits>.<digits>.<hex>", e.g. "13345224609.738474920.8088930838d"
        first = int(self.clock.now() * 1000) % 10**11 + len(self.triggers)
        trigger = Trigger(
            id=f"{first}.{secrets.randbelow(10**9):09d}.{secrets.token_hex(16)}",
            user_id=user_id,
            issued_at=self.clock.now(),
            view_id=view_id,
        )
        with self.lock:
            self.triggers[trigger.id] = trigger
        return trigger.id

    def issue_response_url(
        self,
        base_url: str,
        user_id: str,
        channel_id: str | None,
        message_ts: str | None = None,
        *,
        is_ephemeral: bool = False,
    ) -> str:
        url_id = f"{self.team_id}/{len(self.response_urls) + 1}/{random_token(24)}"
        record = ResponseUrl(
            id=url_id,
            user_id=user_id,
            channel_id=channel_id,
            issued_at=self.clock.now(),
            message_ts=message_ts,
            is_ephemeral=is_ephemeral,
        )
        with self.lock:
            self.response_urls[url_id] = record
        return f"{base_url}/response/{url_id}"

    def new_view_hash(self) -> str:
        return f"{int(self.clock.now())}.{random_token(8)}"


__all__ = [
    "RESPONSE_URL_TTL",
    "RESPONSE_URL_USES",
    "TRIGGER_TTL",
    "Channel",
    "Clock",
    "Ephemeral",
    "Message",
    "ResponsePost",
    "ResponseUrl",
    "Trigger",
    "UploadedFile",
    "User",
    "UserGroup",
    "View",
    "Workspace",
]
