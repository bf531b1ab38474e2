"""A loopback audit sink for tests: a signed-webhook receiver and a Splunk HEC endpoint.

Webhook (`POST /webhook`): checks X-Gatehouse-Signature as integrations/sinks.py documents it,
computed here independently of that module; 401 for a bad signature or a timestamp more than
5 minutes off. Splunk HEC (`POST /services/collector/event`, `GET /services/collector/health`):
checks `Authorization: Splunk <token>`, reads concatenated JSON event objects, and answers with
HEC's statuses and `{"text", "code"}` bodies; as HEC does, events before an invalid one in a
batch are kept. Both record what they accepted in arrival order, and can be stopped and started
again on the same port, made to answer 503 (busy), or slowed down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from tests.emulators.loopback import LoopbackHandler, LoopbackServer, Serving

WEBHOOK_PATH = "/webhook"
HEC_EVENT_PATHS = ("/services/collector/event", "/services/collector/event/1.0")
HEC_HEALTH_PATH = "/services/collector/health"
REPLAY_WINDOW_SECONDS = 300
Answer = tuple[int, dict[str, Any]]


def _hec(status: int, code: int, text: str, invalid_event: int | None = None) -> Answer:
    body: dict[str, Any] = {"text": text, "code": code}
    if invalid_event is not None:
        body["invalid-event-number"] = invalid_event
    return status, body


class SinkReceiver:
    """`start()`, point the sinks at `webhook_url` / `hec_url`, read `accepted`, `stop()`."""

    def __init__(
        self,
        *,
        webhook_secret: str = "webhook-test-secret",
        hec_token: str = "11111111-2222-3333-4444-555555555555",
        allowed_indexes: frozenset[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.hec_token = hec_token
        self.allowed_indexes = allowed_indexes
        self.host = host
        self.port = port
        self.accepted: list[dict[str, Any]] = []  # webhook records, or HEC events' `event`
        self.hec_events: list[dict[str, Any]] = []  # whole HEC event objects
        self.rejected: list[tuple[int, str]] = []  # (status, why)
        self.busy = False
        self.delay = 0.0
        self.requests = 0
        self._lock = threading.Lock()
        self._serving: Serving | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def hec_url(self) -> str:
        return self.url

    def accepted_ids(self) -> list[str]:
        with self._lock:
            return [str(record["id"]) for record in self.accepted]

    def start(self) -> None:
        """Serve, on the port of the last run if there was one."""
        if self._serving is not None:
            return
        server = _Server((self.host, self.port), _Handler)
        server.receiver = self
        self._serving = Serving(server, "sink-receiver")
        self.port = self._serving.port

    def stop(self) -> None:
        """Stop serving: connections are refused until `start()`; what was accepted stays."""
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    def webhook(self, headers: dict[str, str], raw: bytes) -> Answer:
        timestamp = headers.get("x-gatehouse-timestamp", "")
        signature = headers.get("x-gatehouse-signature", "")
        message = timestamp.encode() + b"." + raw
        expected = hmac.new(self.webhook_secret.encode(), message, hashlib.sha256).hexdigest()
        with self._lock:
            self.requests += 1
            if self.busy:
                return self._reject(503, "busy")
            if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
                return self._reject(401, "stale or missing timestamp")
            if not hmac.compare_digest("sha256=" + expected, signature):
                return self._reject(401, "bad signature")
            if headers.get("content-type", "").split(";")[0] != "application/json":
                return self._reject(415, "not JSON")
            try:
                records = json.loads(raw)["records"]
            except (ValueError, KeyError, TypeError):
                return self._reject(400, "not a batch of records")
            self.accepted.extend(records)
            return 200, {"accepted": len(records)}

    def hec_event(self, headers: dict[str, str], raw: bytes) -> Answer:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            self.requests += 1
            if not scheme:
                return self._reject(*_hec(401, 2, "Token is required"))
            if scheme != "Splunk" or not token:
                return self._reject(*_hec(401, 3, "Invalid authorization"))
            if token != self.hec_token:
                return self._reject(*_hec(403, 4, "Invalid token"))
            if self.busy:
                return self._reject(*_hec(503, 9, "Server is busy"))
            if not raw.strip():
                return self._reject(*_hec(400, 5, "No data"))
            for number, event in enumerate(_concatenated_json(raw)):
                problem = self._hec_problem(event)
                if problem is not None:
                    code, why = problem
                    return self._reject(*_hec(400, code, why, invalid_event=number))
                self.hec_events.append(event)
                self.accepted.append(event["event"])
            return _hec(200, 0, "Success")

    def hec_health(self) -> Answer:
        if self.busy:
            return _hec(503, 18, "HEC is unhealthy, queues are full")
        return _hec(200, 17, "HEC is healthy")

    def _hec_problem(self, event: Any) -> tuple[int, str] | None:
        if not isinstance(event, dict):
            return 6, "Invalid data format"
        if "event" not in event:
            return 12, "Event field is required"
        if event["event"] in ("", None):
            return 13, "Event field cannot be blank"
        index = event.get("index")
        if (
            index is not None
            and self.allowed_indexes is not None
            and index not in self.allowed_indexes
        ):
            return 7, "Incorrect index"
        return None

    def _reject(self, status: int, body: dict[str, Any] | str) -> Answer:
        why = body if isinstance(body, str) else str(body.get("text"))
        self.rejected.append((status, why))
        return status, body if isinstance(body, dict) else {"error": body}


def _concatenated_json(raw: bytes) -> Iterator[Any]:
    """HEC's batch format: JSON objects one after another, whitespace between or not.

    A body that stops parsing yields a string in place of the object, which is then invalid.
    """
    text = raw.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError:
            yield "unparseable"
            return
        yield value


class _Server(LoopbackServer):
    receiver: SinkReceiver


class _Handler(LoopbackHandler):
    server: _Server

    def _serve(self) -> None:
        receiver = self.server.receiver
        raw = self.read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        path = urlsplit(self.path).path
        if receiver.delay:
            time.sleep(receiver.delay)
        if self.command == "POST" and path == WEBHOOK_PATH:
            status, body = receiver.webhook(headers, raw)
        elif self.command == "POST" and path in HEC_EVENT_PATHS:
            status, body = receiver.hec_event(headers, raw)
        elif self.command == "GET" and path == HEC_HEALTH_PATH:
            status, body = receiver.hec_health()
        else:
            status, body = 404, {"text": "The requested URL was not found on this server."}
        encoded = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)


@contextmanager
def running_receiver(**kwargs: Any) -> Iterator[SinkReceiver]:
    receiver = SinkReceiver(**kwargs)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
