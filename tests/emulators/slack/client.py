"""The inbound side: what Slack sends the bot's HTTP endpoint, signed exactly as Slack signs it.

Slash commands and interactivity are `application/x-www-form-urlencoded` (interactivity as a
single `payload=<json>` field); the Events API is JSON. Every request carries a trigger_id that
the emulator's views.open accepts once within 3 s, and (for commands and message actions) a
response_url served by the emulator at `/response/<id>`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from .command_text import as_slack_sends, manifest_escaping
from .common import JSON, random_token
from .endpoints import apply_view_ack
from .signing import signed_headers
from .state import View

if TYPE_CHECKING:
    from .emulator import SlackEmulator

ACK_DEADLINE = 3.0


@dataclass
class InboundResult:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float  # seconds for the round trip
    sent: bytes  # the raw body that was signed and sent
    trigger_id: str | None = None
    response_url: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. an invalid view in a response_action

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def acked_in_time(self) -> bool:
        """Slack shows the user an error unless a 2xx comes back within 3 seconds."""
        return 200 <= self.status < 300 and self.elapsed <= ACK_DEADLINE


@dataclass
class SendOptions:
    timestamp: int | None = None  # override X-Slack-Request-Timestamp (replay-window tests)
    corrupt_signature: bool = False
    signing_secret: str | None = None  # sign with another secret
    retry_num: int | None = None  # X-Slack-Retry-Num (Events API redelivery)
    retry_reason: str | None = None  # X-Slack-Retry-Reason, e.g. "http_timeout"


class SlackClient:
    """Drives the bot at `endpoint` (e.g. "http://127.0.0.1:3000/slack/events")."""

    def __init__(
        self,
        emulator: SlackEmulator,
        endpoint: str,
        *,
        timeout: float = 10.0,
        should_escape: dict[str, bool] | None = None,
    ) -> None:
        self.emulator = emulator
        self.endpoint = endpoint
        self.timeout = timeout
        # Each command's `should_escape`, as the app's manifest configures it in Slack.
        self.should_escape = manifest_escaping() if should_escape is None else should_escape

    # -- transport --------------------------------------------------------------------------

    def send(
        self, body: bytes, content_type: str, options: SendOptions | None = None
    ) -> InboundResult:
        opts = options or SendOptions()
        secret = opts.signing_secret or self.emulator.signing_secret
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        headers.update(
            signed_headers(secret, body, timestamp=opts.timestamp, corrupt=opts.corrupt_signature)
        )
        if opts.retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(opts.retry_num)
            headers["X-Slack-Retry-Reason"] = opts.retry_reason or "http_timeout"
        started = time.perf_counter()
        response = httpx.post(self.endpoint, content=body, headers=headers, timeout=self.timeout)
        elapsed = time.perf_counter() - started
        self.emulator.record_ack(response.content)
        return InboundResult(
            status=response.status_code,
            headers=dict(response.headers),
            body=response.content,
            elapsed=elapsed,
            sent=body,
        )

    def send_form(self, fields: dict[str, str], options: SendOptions | None) -> InboundResult:
        return self.send(urlencode(fields).encode(), "application/x-www-form-urlencoded", options)

    def send_payload(self, payload: JSON, options: SendOptions | None = None) -> InboundResult:
        return self.send_form({"payload": json.dumps(payload)}, options)

    # -- payload pieces -----------------------------------------------------------------------

    def _user(self, user_id: str) -> JSON:
        user = self.emulator.workspace.users.get(user_id)
        name = user.name if user else user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.emulator.team_id}

    def _team(self) -> JSON:
        return {"id": self.emulator.team_id, "domain": self.emulator.workspace.team_domain}

    def _channel_name(self, channel_id: str) -> str:
        channel = self.emulator.workspace.channels.get(channel_id)
        if channel is None:
            return "unknown"
        return "directmessage" if channel.is_im else channel.name

    # -- slash commands -------------------------------------------------------------------------

    def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str,
        channel_id: str,
        options: SendOptions | None = None,
        raw: bool = False,
        **overrides: str,
    ) -> InboundResult:
        """`text` is what the user typed (`@linus`, `#general`, `@here`, `a & b`): it is sent
        the way Slack sends it for this command's `should_escape`. `raw=True` sends `text`
        exactly as given, e.g. a hand-built or hostile body."""
        ws = self.emulator.workspace
        if not raw:
            with ws.lock:
                text = as_slack_sends(
                    text, should_escape=self.should_escape.get(command, False), workspace=ws
                )
        trigger_id = ws.issue_trigger(user_id)
        response_url = ws.issue_response_url(self.emulator.url, user_id, channel_id)
        fields = {
            "token": self.emulator.verification_token,
            "team_id": self.emulator.team_id,
            "team_domain": ws.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channel_name(channel_id),
            "user_id": user_id,
            "user_name": self._user(user_id)["name"],
            "command": command,
            "text": text,
            "api_app_id": self.emulator.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        fields.update(overrides)
        result = self.send_form(fields, options)
        result.trigger_id, result.response_url = trigger_id, response_url
        return result

    # -- interactivity ------------------------------------------------------------------------

    def block_action(
        self,
        user_id: str,
        action_id: str,
        value: str | None = None,
        *,
        channel_id: str | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
        block_id: str | None = None,
        action: JSON | None = None,
        state_values: JSON | None = None,
        options: SendOptions | None = None,
    ) -> InboundResult:
        """A click on `action_id` in a message (channel_id + message_ts) or a modal (view_id)."""
        ws = self.emulator.workspace
        payload: JSON = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.emulator.app_id,
            "token": self.emulator.verification_token,
        }
        blocks: list[Any] = []
        response_url = None
        if view_id is not None:
            view = ws.views.get(view_id) or next(
                (v for v in ws.home_tabs.values() if v.id == view_id), None
            )
            if view is None:
                raise KeyError(f"no view {view_id}")
            blocks = view.body.get("blocks", [])
            payload["container"] = {"type": "view", "view_id": view_id}
            trigger_id = ws.issue_trigger(user_id, view_id)
            payload["view"] = self._view_payload(view, state_values or {})
        else:
            if channel_id is None:
                raise ValueError("a message action needs channel_id (and message_ts)")
            message, is_ephemeral = self._find_message(user_id, channel_id, message_ts)
            blocks = message.get("blocks") or []
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": is_ephemeral,
            }
            trigger_id = ws.issue_trigger(user_id)
            response_url = ws.issue_response_url(
                self.emulator.url, user_id, channel_id, message_ts, is_ephemeral=is_ephemeral
            )
            payload["channel"] = {"id": channel_id, "name": self._channel_name(channel_id)}
            if not is_ephemeral:
                payload["message"] = message
            payload["response_url"] = response_url
            payload["state"] = {"values": state_values or {}}
        payload["trigger_id"] = trigger_id
        payload["team"] = self._team()
        payload["enterprise"] = None
        payload["is_enterprise_install"] = False
        payload["actions"] = [self._action(blocks, action_id, value, block_id, action)]
        result = self.send_payload(payload, options)
        result.trigger_id, result.response_url = trigger_id, response_url
        return result

    def _find_message(self, user_id: str, channel_id: str, ts: str | None) -> tuple[JSON, bool]:
        ws = self.emulator.workspace
        channel = ws.channels.get(channel_id)
        found = channel.find(ts) if channel is not None and ts else None
        if found is not None:
            return found.to_api(ws.team_id, ws.bot_profile()), False
        for ephemeral in ws.ephemerals:
            if ephemeral.message_ts == ts and ephemeral.user == user_id:
                return {
                    "type": "message",
                    "ts": ts,
                    "text": ephemeral.text,
                    "blocks": ephemeral.blocks or [],
                }, True
        raise KeyError(f"no message {ts} in {channel_id} that {user_id} can see")

    def _action(
        self,
        blocks: list[Any],
        action_id: str,
        value: str | None,
        block_id: str | None,
        extra: JSON | None,
    ) -> JSON:
        element: JSON = {"type": "button"}
        for block in blocks:
            candidates = list(block.get("elements") or [])
            for key in ("accessory", "element"):
                if isinstance(block.get(key), dict):
                    candidates.append(block[key])
            for candidate in candidates:
                if isinstance(candidate, dict) and candidate.get("action_id") == action_id:
                    element = candidate
                    block_id = block_id or block.get("block_id")
        action: JSON = {
            "action_id": action_id,
            "block_id": block_id or random_token(5),
            "type": element.get("type", "button"),
        }
        for key in ("text", "style"):
            if key in element:
                action[key] = element[key]
        action["value"] = value if value is not None else element.get("value")
        if action["value"] is None:
            del action["value"]
        action["action_ts"] = f"{time.time():.6f}"
        action.update(extra or {})
        return action

    def _view_payload(self, view: View, state_values: JSON) -> JSON:
        out = view.to_api(self.emulator.app_id, self.emulator.bot_id)
        out["state"] = {"values": state_values}
        return out

    def view_submission(
        self,
        user_id: str,
        view_callback_id: str | None = None,
        state_values: JSON | None = None,
        private_metadata: str | None = None,
        *,
        view_id: str | None = None,
        options: SendOptions | None = None,
    ) -> InboundResult:
        """Submit the user's open modal (by view_id, else the newest with that callback_id)."""
        ws = self.emulator.workspace
        view = ws.views.get(view_id) if view_id else None
        if view is None:
            open_views = [
                v
                for v in ws.views.values()
                if v.user_id == user_id
                and not v.closed
                and (view_callback_id is None or v.body.get("callback_id") == view_callback_id)
            ]
            view = open_views[-1] if open_views else None
        if view is None:  # a modal the emulator never saw: synthesize one
            body = {
                "type": "modal",
                "callback_id": view_callback_id or "",
                "title": {"type": "plain_text", "text": "Modal", "emoji": True},
                "blocks": [],
                "private_metadata": private_metadata or "",
            }
            view = View(
                id="V0" + random_token(9).upper(),
                team_id=ws.team_id,
                user_id=user_id,
                type="modal",
                body=body,
                hash=ws.new_view_hash(),
                root_view_id="",
            )
            view.root_view_id = view.id
        payload_view = self._view_payload(view, state_values or {})
        if private_metadata is not None:
            payload_view["private_metadata"] = private_metadata
        trigger_id = ws.issue_trigger(user_id, view.id)
        payload = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.emulator.app_id,
            "token": self.emulator.verification_token,
            "trigger_id": trigger_id,
            "view": payload_view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        result = self.send_payload(payload, options)
        result.trigger_id = trigger_id
        if result.acked_in_time:
            try:
                ack = result.json()
            except ValueError:
                ack = None
            result.notes.extend(apply_view_ack(ws, view, ack))
        return result

    # -- Events API -------------------------------------------------------------------------------

    def event(self, event: JSON, *, options: SendOptions | None = None) -> InboundResult:
        """An `event_callback` envelope around `event` (e.g. {"type": "app_home_opened", ...})."""
        now = time.time()
        inner = {**event, "event_ts": event.get("event_ts", f"{now:.6f}")}
        envelope = {
            "token": self.emulator.verification_token,
            "team_id": self.emulator.team_id,
            "api_app_id": self.emulator.app_id,
            "event": inner,
            "type": "event_callback",
            "event_id": "Ev0" + random_token(9).upper(),
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.emulator.team_id,
                    "user_id": self.emulator.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + random_token(40),
        }
        return self.send(json.dumps(envelope).encode(), "application/json", options)

    def url_verification(self, challenge: str | None = None) -> InboundResult:
        body = {
            "token": self.emulator.verification_token,
            "type": "url_verification",
            "challenge": challenge or random_token(40),
        }
        return self.send(json.dumps(body).encode(), "application/json")
