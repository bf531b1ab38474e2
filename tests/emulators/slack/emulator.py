"""SlackEmulator: start/stop, test controls (faults, 429s, outages, users, channels, groups,
clock) and state inspection (messages, ephemerals, pins, files, views, home tabs, response_url
posts)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.loopback import Serving

from . import spec
from .common import JSON, new_id
from .dispatch import HANDLERS, Dispatcher, Outage, Outcome
from .server import Handler, Server
from .state import Channel, Ephemeral, Message, ResponsePost, UploadedFile, User, UserGroup, View
from .state import Workspace as Workspace

DEFAULT_BOT_TOKEN = "xoxb-1234567890-1234567890123-EmulatorBotTokenAbCdEf"
DEFAULT_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class RecordedCall:
    method: str  # the API method, e.g. "chat.postMessage"
    args: JSON  # parsed arguments; a `token` argument shows as "<redacted>"
    response: JSON  # the body sent back
    status: int = 200
    http_method: str = "POST"
    modelled: bool = True  # False: an existing method without a model, answered {"ok": true}
    # When the answer was ready (time.monotonic(), this process): benchmarks time the bot by it.
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.response.get("ok") is True


class SlackEmulator:
    """A Slack workspace on loopback: point `WebClient(base_url=emulator.api_url)` at it."""

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
        enforce_rate_limits: bool = False,
        post_message_burst: int = 1,
        scopes: Iterable[str] | None = None,
        team_domain: str = "gatehouse-test",
        bot_name: str = "gatehouse",
    ) -> None:
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.host = host
        self.port = port
        self.team_id = new_id("T", 8)
        self.bot_user_id = new_id("U")
        self.bot_id = new_id("B")
        self.app_id = new_id("A")
        self.verification_token = "EmulatorVerificationToken0"
        self.workspace = Workspace(
            team_id=self.team_id,
            team_domain=team_domain,
            team_name="Gatehouse Test",
            bot_user_id=self.bot_user_id,
            bot_id=self.bot_id,
            app_id=self.app_id,
            bot_name=bot_name,
        )
        self.dispatcher = Dispatcher(
            self.workspace, bot_token, scopes, enforce_rate_limits, post_message_burst
        )
        self.calls: list[RecordedCall] = []
        self.acks: list[bytes] = []  # the bot's HTTP answers to what the client sent
        self._calls_lock = threading.Lock()
        self._serving: Serving | None = None
        ws = self.workspace
        ws.users[self.bot_user_id] = User(
            id=self.bot_user_id,
            name=bot_name,
            team_id=self.team_id,
            is_bot=True,
            bot_id=self.bot_id,
        )
        ws.users["USLACKBOT"] = User(
            id="USLACKBOT",
            name="slackbot",
            team_id=self.team_id,
            is_bot=False,
            real_name="Slackbot",
        )
        general = Channel(
            id=new_id("C"), name="general", creator="USLACKBOT", created=ws.now(), is_general=True
        )
        ws.channels[general.id] = general

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def start(self) -> None:
        """Serve on loopback. SpecFilesMissing (one line) first if a modelled method's JSON is
        not found, rather than a failure in the middle of a request."""
        if self._serving is not None:
            return
        spec.require(HANDLERS)
        server = Server((self.host, self.port), Handler)
        server.emulator = self
        self._serving = Serving(server, "slack-emulator")
        self.port = self._serving.port

    def stop(self) -> None:
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    def __enter__(self) -> SlackEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls ----------------------------------------------------------------------

    def rate_limit_next(self, method: str, count: int = 1, retry_after: int = 1) -> None:
        """The next `count` calls of `method` get HTTP 429, `Retry-After`, `ratelimited`."""
        self.dispatcher.queue(method, "ratelimited", count, retry_after=max(1, retry_after))

    def fail_next(self, method: str, error: str, count: int = 1) -> None:
        """The next `count` calls of `method` get HTTP 200 `{"ok": false, "error": error}`."""
        self.dispatcher.queue(method, error, count)

    def start_outage(
        self, status: int = 500, *, retry_after: int = 1, seconds: float | None = None
    ) -> None:
        """Slack failing as a whole: every Web API call (any method, any token) gets HTTP
        `status` until `end_outage`, or for `seconds` when given. 429 comes with `Retry-After:
        retry_after` and `ratelimited`, as Slack rate-limits; a 5xx with Slack's error for it
        (500 `internal_error`, 503 `service_unavailable`...). Calls are recorded as answered."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"an outage answers 429 or 5xx, not {status}")
        until = None if seconds is None else time.monotonic() + seconds
        with self.dispatcher.lock:
            self.dispatcher.outage = Outage(status, max(1, retry_after), until)

    def end_outage(self) -> None:
        """Slack answers again."""
        with self.dispatcher.lock:
            self.dispatcher.outage = None

    @property
    def in_outage(self) -> bool:
        return self.dispatcher.current_outage() is not None

    def set_enforce_rate_limits(self, enabled: bool) -> None:
        self.dispatcher.enforce_rate_limits = enabled

    def revoke_token(self, token: str | None = None) -> None:
        """Calls with the token now fail with `token_revoked`."""
        self.dispatcher.revoked.add(token or self.bot_token)

    def advance_clock(self, seconds: float) -> None:
        """Move time forward: trigger_ids (3 s) and response_urls (30 min) expire by it."""
        self.workspace.clock.advance(seconds)

    def add_user(
        self,
        user_id: str,
        name: str,
        email: str | None = None,
        is_bot: bool = False,
        *,
        real_name: str = "",
        deleted: bool = False,
    ) -> None:
        with self.workspace.lock:
            self.workspace.users[user_id] = User(
                id=user_id,
                name=name,
                team_id=self.team_id,
                email=email,
                is_bot=is_bot,
                real_name=real_name,
                deleted=deleted,
            )

    def add_channel(
        self,
        name: str,
        members: Iterable[str] = (),
        is_private: bool = False,
        *,
        creator: str | None = None,
        bot_member: bool = False,
        archived: bool = False,
    ) -> str:
        """A channel created by someone else: the bot is in it only if listed or `bot_member`."""
        ws = self.workspace
        listed = list(dict.fromkeys(members))
        if bot_member and self.bot_user_id not in listed:
            listed.append(self.bot_user_id)
        with ws.lock:
            if ws.channel_named(name) is not None:
                raise ValueError(f"channel name taken: {name}")
            channel = Channel(
                id=new_id("C"),
                name=name,
                creator=creator or "USLACKBOT",
                created=ws.now(),
                is_private=is_private,
                members=listed,
                archived=archived,
            )
            ws.channels[channel.id] = channel
        return channel.id

    def add_message(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> str:
        """A message someone else posted (the bot cannot update it); returns its ts."""
        ws = self.workspace
        with ws.lock:
            message = Message(
                ts=ws.next_ts(), channel=channel, user=user, text=text, thread_ts=thread_ts
            )
            ws.channels[channel].history.append(message)
        return message.ts

    def add_usergroup(
        self,
        handle: str,
        users: Iterable[str],
        name: str | None = None,
        *,
        group_id: str | None = None,
    ) -> str:
        """A user group; `group_id` gives it a known id (one a policy names), else a new one."""
        group = UserGroup(
            id=group_id or new_id("S"), handle=handle, name=name or handle, users=list(users)
        )
        with self.workspace.lock:
            self.workspace.usergroups[group.id] = group
        return group.id

    def issue_trigger(self, user_id: str, view_id: str | None = None) -> str:
        return self.workspace.issue_trigger(user_id, view_id)

    # -- inspection ---------------------------------------------------------------------------

    def channel(self, channel_id: str) -> Channel:
        return self.workspace.channels[channel_id]

    def channel_by_name(self, name: str) -> Channel | None:
        return self.workspace.channel_named(name.lstrip("#"))

    def messages(self, channel: str, *, include_system: bool = False) -> list[Message]:
        """Channel history, oldest first (thread replies included); ephemerals never appear."""
        with self.workspace.lock:
            history = list(self.workspace.channels[channel].history)
        return [m for m in history if include_system or not m.is_system]

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.messages(channel) if m.thread_ts == thread_ts and m.ts != thread_ts]

    def ephemerals(self, user: str, channel: str | None = None) -> list[Ephemeral]:
        with self.workspace.lock:
            found = list(self.workspace.ephemerals)
        return [e for e in found if e.user == user and (channel is None or e.channel == channel)]

    def pins(self, channel: str) -> list[str]:
        return list(self.workspace.channels[channel].pins)

    def dm_channel(self, user: str) -> Channel | None:
        return next(
            (c for c in self.workspace.channels.values() if c.is_im and c.im_user == user), None
        )

    def dms(self, user: str) -> list[Message]:
        """What the bot sent `user` in their direct-message channel."""
        channel = self.dm_channel(user)
        return [] if channel is None else self.messages(channel.id)

    def files(self) -> list[UploadedFile]:
        return list(self.workspace.files.values())

    def views(self, user: str | None = None) -> list[View]:
        """Modals opened or pushed (closed ones too), oldest first."""
        return [v for v in self.workspace.views.values() if user is None or v.user_id == user]

    def home_tab(self, user: str) -> View | None:
        return self.workspace.home_tabs.get(user)

    def responses(self, user: str | None = None) -> list[ResponsePost]:
        """Everything the bot posted to response_urls (for `user`'s interactions)."""
        with self.workspace.lock:
            records = list(self.workspace.response_urls.values())
        return [p for r in records if user is None or r.user_id == user for p in r.posts]

    def outbound(self) -> list[tuple[str, Any]]:
        """Everything the bot sent towards Slack, as (how, what): each Web API call's
        arguments, each response_url post, each HTTP answer (an ack's text or a view error)."""
        with self._calls_lock:
            sent: list[tuple[str, Any]] = [(c.method, c.args) for c in self.calls]
            sent += [("ack", body.decode(errors="replace")) for body in self.acks]
        sent += [("response_url", post.body) for post in self.responses()]
        return sent

    def record_ack(self, body: bytes) -> None:
        with self._calls_lock:
            self.acks.append(body)

    def calls_to(self, method: str) -> list[RecordedCall]:
        with self._calls_lock:
            return [c for c in self.calls if c.method == method]

    def methods_called(self) -> list[str]:
        with self._calls_lock:
            return [c.method for c in self.calls]

    def unmodelled_calls(self) -> list[RecordedCall]:
        """Calls of real methods the emulator has no model for (answered `{"ok": true}`)."""
        with self._calls_lock:
            return [c for c in self.calls if not c.modelled]

    def record(self, method: str, http_method: str, args: JSON, outcome: Outcome) -> None:
        call = RecordedCall(
            method=method,
            args=copy.deepcopy(args),
            response=outcome.body,
            status=outcome.status,
            http_method=http_method,
            modelled=outcome.handled,
        )
        with self._calls_lock:
            self.calls.append(call)


@contextmanager
def running_slack(**kwargs: Any) -> Iterator[SlackEmulator]:
    """A started emulator, stopped afterwards: `with running_slack() as slack: ...`."""
    emulator = SlackEmulator(**kwargs)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
