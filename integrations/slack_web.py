"""The chat gateway and the directory over slack_sdk's WebClient: Slack's rate limits and
connection errors are retried by slack_sdk's own handlers; what still fails becomes a ChatError
with Slack's code."""

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.domain.errors import ChannelNameTaken, ChatError, ChatUnavailable
from bot.domain.ports import UserGroupMembers
from bot.metrics import SLACK_CALLS, SLACK_ERRORS
from integrations.ttl_cache import TtlCache

T = TypeVar("T")
Blocks = Sequence[Mapping[str, Any]]


def make_web_client(token: str, *, base_url: str | None = None, timeout: int = 10) -> WebClient:
    """A WebClient that waits out 429s (Retry-After) and retries connection and 5xx errors."""
    client = WebClient(
        token=token,
        base_url=(base_url.rstrip("/") + "/") if base_url else WebClient.BASE_URL,
        timeout=timeout,
    )
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=2),
    ]
    return client


class SlackRefused(ChatError):
    """Slack answered with an error code (`users_not_found`, `no_such_subteam`...)."""

    def __init__(self, method: str, code: str) -> None:
        super().__init__(f"Slack refused {method}: {code}")
        self.code = code


class SlackUnavailable(ChatUnavailable):
    """Slack answered 429 or 5xx after the client's own retries: try again later."""

    def __init__(self, method: str, code: str) -> None:
        super().__init__(f"Slack is unavailable for {method} right now ({code})")
        self.code = code


# Slack's documented transient answers: rate limits and its own failures
# (https://api.slack.com/apis/rate-limits, https://api.slack.com/methods/chat.postMessage).
_TRY_LATER_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRY_LATER_CODES = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


# Slack message metadata naming what Gatehouse posted (https://docs.slack.dev/messaging/message-metadata).
MARKER_EVENT_TYPE = "gatehouse_notice"
MARKED_PAGES = 5


def _marked(marker: str) -> dict[str, Any]:
    return {"event_type": MARKER_EVENT_TYPE, "event_payload": {"marker": marker}}


def _call(method: str, action: Callable[[], T]) -> T:
    try:
        with SLACK_CALLS.labels(method).time():
            return action()
    except SlackApiError as error:
        code = str(error.response.get("error", "unknown_error"))
        SLACK_ERRORS.labels(method, code).inc()
        if method == "conversations.create" and code == "name_taken":
            raise ChannelNameTaken("That channel name is taken.") from None
        if error.response.status_code in _TRY_LATER_STATUSES or code in _TRY_LATER_CODES:
            raise SlackUnavailable(method, code) from None
        raise SlackRefused(method, code) from None
    except (SlackRequestError, OSError) as error:
        SLACK_ERRORS.labels(method, "unreachable").inc()
        raise ChatUnavailable(f"Slack could not be reached for {method}: {error}") from None


class SlackChat:
    """Implements the ChatGateway port."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _call(self, method: str, action: Callable[[], T]) -> T:
        return _call(method, action)

    def create_channel(self, name: str) -> str:
        response = self._call(
            "conversations.create", lambda: self.client.conversations_create(name=name)
        )
        return str(response["channel"]["id"])

    def invite(self, channel: str, users: Sequence[str]) -> None:
        """Add `users` to `channel`; someone already there is not an error (a hand-off to a
        member invites nobody new)."""
        if not users:
            return
        try:
            self._call(
                "conversations.invite",
                lambda: self.client.conversations_invite(channel=channel, users=list(users)),
            )
        except SlackRefused as refused:
            if refused.code != "already_in_channel":
                raise

    def set_topic(self, channel: str, topic: str) -> None:
        self._call(
            "conversations.setTopic",
            lambda: self.client.conversations_setTopic(channel=channel, topic=topic[:250]),
        )

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        marker: str | None = None,
    ) -> str:
        metadata = None if marker is None else _marked(marker)
        response = self._call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=_blocks(blocks),
                thread_ts=thread_ts,
                metadata=metadata,
            ),
        )
        return str(response["ts"])

    def find_marked(self, channel: str, marker: str, *, thread_ts: str | None = None) -> str | None:
        """Read the thread (every page, up to MARKED_PAGES) or the channel's latest page,
        metadata included (Slack returns it only when asked: `include_all_metadata`)."""
        wanted = _marked(marker)
        cursor: str | None = None
        for _ in range(MARKED_PAGES):
            if thread_ts is None:
                response = self._call(
                    "conversations.history",
                    lambda: self.client.conversations_history(
                        channel=channel, include_all_metadata=True, limit=100
                    ),
                )
            else:
                response = self._call(
                    "conversations.replies",
                    lambda page=cursor: self.client.conversations_replies(  # type: ignore[misc]
                        channel=channel,
                        ts=thread_ts,
                        include_all_metadata=True,
                        limit=200,
                        cursor=page,
                    ),
                )
            for message in response.get("messages") or []:
                if message.get("metadata") == wanted:
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if thread_ts is None or cursor is None:
                return None
        return None

    def update(self, channel: str, ts: str, *, text: str, blocks: Blocks | None = None) -> None:
        self._call(
            "chat.update",
            lambda: self.client.chat_update(
                channel=channel, ts=ts, text=text, blocks=_blocks(blocks) or []
            ),
        )

    def post_ephemeral(
        self, channel: str, user: str, *, text: str, blocks: Blocks | None = None
    ) -> None:
        self._call(
            "chat.postEphemeral",
            lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, text=text, blocks=_blocks(blocks)
            ),
        )

    def send_dm(self, user: str, *, text: str, blocks: Blocks | None = None) -> None:
        self.post(self.open_dm(user), text=text, blocks=blocks)

    def open_dm(self, user: str) -> str:
        opened = self._call(
            "conversations.open", lambda: self.client.conversations_open(users=user)
        )
        return str(opened["channel"]["id"])

    def pin(self, channel: str, ts: str) -> None:
        self._call("pins.add", lambda: self.client.pins_add(channel=channel, timestamp=ts))

    def archive(self, channel: str) -> None:
        """Archive; a channel already archived counts as done (a retry after a lost answer)."""

        def archive_once() -> None:
            try:
                self.client.conversations_archive(channel=channel)
            except SlackApiError as error:
                if error.response.get("error") != "already_archived":
                    raise

        self._call("conversations.archive", archive_once)

    def upload_file(
        self, channel: str, *, filename: str, content: str, title: str, comment: str | None = None
    ) -> None:
        """Slack's upload flow: files.getUploadURLExternal, POST the bytes, complete."""
        self._call(
            "files.uploadV2",
            lambda: self.client.files_upload_v2(
                channel=channel,
                filename=filename,
                content=content,
                title=title,
                initial_comment=comment,
            ),
        )

    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        self._call(
            "views.open", lambda: self.client.views_open(trigger_id=trigger_id, view=dict(view))
        )

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        self._call(
            "views.publish", lambda: self.client.views_publish(user_id=user, view=dict(view))
        )


SLACKBOT = "USLACKBOT"  # Slack's own helper: users.info calls it neither a bot nor deleted


class SlackDirectory:
    """Implements the Directory port: user groups and e-mail addresses, cached for `seconds`
    so a burst of requests does not spend Slack's Tier 2 limit on the same group."""

    def __init__(
        self,
        client: WebClient,
        *,
        seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._groups: TtlCache[UserGroupMembers] = TtlCache(seconds, clock)
        self._handles: TtlCache[dict[str, str]] = TtlCache(seconds, clock)
        self._people: TtlCache[str | None] = TtlCache(seconds, clock)

    def usergroup(self, group_id: str) -> UserGroupMembers:
        def load() -> UserGroupMembers:
            response = _call(
                "usergroups.users.list",
                lambda: self.client.usergroups_users_list(usergroup=group_id),
            )
            members = frozenset(str(user) for user in response.get("users") or [])
            return UserGroupMembers(group_id, self._handle(group_id), members)

        return self._groups.get(group_id, load)

    def _handle(self, group_id: str) -> str:
        def load() -> dict[str, str]:
            response = _call("usergroups.list", lambda: self.client.usergroups_list())
            return {str(g["id"]): str(g["handle"]) for g in response.get("usergroups") or []}

        return self._handles.get("all", load).get(group_id, group_id)

    def email_of(self, user_id: str) -> str | None:
        def load() -> str | None:
            response = _call("users.info", lambda: self.client.users_info(user=user_id))
            email = ((response.get("user") or {}).get("profile") or {}).get("email")
            return str(email) if email else None

        return self._people.get(("email", user_id), load)

    def is_active_human(self, user_id: str) -> bool:
        """A member who can act: users.info says not a bot, not deleted; Slackbot is neither
        a bot nor a person who can take an incident. Asked each time (a hand-off is rare)."""
        if user_id == SLACKBOT:
            return False
        try:
            response = _call("users.info", lambda: self.client.users_info(user=user_id))
        except SlackRefused as refused:
            if refused.code == "user_not_found":
                return False
            raise
        user = response.get("user") or {}
        return not (user.get("is_bot") or user.get("deleted") or user.get("is_app_user"))

    def user_by_email(self, email: str) -> str | None:
        def load() -> str | None:
            try:
                response = _call(
                    "users.lookupByEmail", lambda: self.client.users_lookupByEmail(email=email)
                )
            except SlackRefused as refused:
                if refused.code == "users_not_found":
                    return None
                raise
            return str(response["user"]["id"])

        return self._people.get(("user", email.lower()), load)


def _blocks(blocks: Blocks | None) -> list[dict[str, Any]] | None:
    return [dict(block) for block in blocks] if blocks else None
