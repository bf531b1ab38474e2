"""The HTTP side: a threaded loopback server parsing Web API requests the way Slack does
(form-urlencoded or JSON bodies, GET query strings, Bearer or `token` auth), plus the upload URL
and response_url endpoints. Every API call is handed to the Dispatcher and recorded."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.emulators.loopback import LoopbackHandler, LoopbackServer

from . import endpoints
from .dispatch import Outcome

if TYPE_CHECKING:
    from .emulator import SlackEmulator

JSON_TYPE = "application/json; charset=utf-8"


class Server(LoopbackServer):
    emulator: SlackEmulator


def parse_api_request(
    command: str, query: str, content_type: str, raw: bytes
) -> tuple[dict[str, Any], bool, str | None]:
    """(args, is_json, error): Slack's reading of a request. Form values are strings."""
    args: dict[str, Any] = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if command == "GET" or not raw:
        return args, False, None
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            return args, True, "invalid_json"
        if not isinstance(body, dict):
            return args, True, "json_not_object"
        body.pop("token", None)  # Slack reads the token of a JSON body from the header only
        return {**args, **body}, True, None
    if kind in ("application/x-www-form-urlencoded", ""):
        if not kind:
            return args, False, "missing_post_type"
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return args, False, "invalid_form_data"
        return {**args, **{k: v[0] for k, v in form.items()}}, False, None
    if kind == "multipart/form-data":
        return args, False, "invalid_form_data"  # only files.upload (retired) took multipart
    return args, False, "invalid_post_type"


class Handler(LoopbackHandler):
    server: Server
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def _serve(self) -> None:
        emulator = self.server.emulator
        raw = self.read_body()
        parts = urlsplit(self.path)
        content_type = self.headers.get("Content-Type") or ""
        if parts.path.startswith("/api/"):
            self._api(unquote(parts.path[len("/api/") :]), parts.query, content_type, raw)
            return
        if self.command == "POST" and parts.path.startswith("/upload/v1/"):
            file_id = parts.path[len("/upload/v1/") :]
            reply = endpoints.upload(emulator.workspace, file_id, raw, content_type)
        elif self.command == "POST" and parts.path.startswith("/response/"):
            url_id = parts.path[len("/response/") :]
            reply = endpoints.response_url(emulator.workspace, url_id, raw, content_type)
        else:
            reply = endpoints.Reply(404, b"Not Found")
        self._send(reply.status, reply.body, reply.content_type)

    def _api(self, method: str, query: str, content_type: str, raw: bytes) -> None:
        emulator = self.server.emulator
        args, is_json, problem = parse_api_request(self.command, query, content_type, raw)
        token = args.pop("token", None)
        shown = {**args, "token": "<redacted>"} if token is not None else dict(args)
        authorization = self.headers.get("Authorization") or ""
        if authorization.lower().startswith("bearer "):
            token = authorization[len("bearer ") :].strip()
        if problem is not None:
            outcome = Outcome(200, {"ok": False, "error": problem})
        else:
            outcome = emulator.dispatcher.call(
                method,
                args,
                token,
                is_json=is_json,
                content_type=content_type,
                base_url=emulator.url,
            )
        emulator.record(method, self.command, shown, outcome)
        body = json.dumps(outcome.body).encode()
        self._send(outcome.status, body, JSON_TYPE, outcome.headers)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
