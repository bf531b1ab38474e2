"""The HTTP edge in front of Bolt: what an unauthenticated request can cost, it costs here.

In order, before Bolt sees a byte: the body is capped (413, the rest never read), the signature
headers must have Slack's shape and the HMAC must match the raw bytes within five minutes (401,
a fixed short body), a signed body Bolt could not parse is refused (400), an Events API event
whose id any replica already accepted is acknowledged without doing the work again (Slack's
retries are re-signed), and any other signature already accepted by any replica is a replay
(401). Nothing a rejected request carries (body, headers) is ever logged: one short line per
rejection, limited per client address, and a counter on /metrics.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from bot.metrics import SLACK_REJECTED

log = logging.getLogger(__name__)

# Everything Slack sends this app is small: a slash command's text, a click on one of our own
# messages (whose text Slack truncates at 40,000 characters:
# https://api.slack.com/changelog/2018-04-truncating-really-long-messages), a submission of one
# of our own modals (at most 100 blocks, private_metadata at most 3,000 characters:
# https://api.slack.com/reference/surfaces/views) or an app_home_opened event. 256 KiB holds the
# largest of those several times over, even percent-encoded.
MAX_BODY_BYTES = 256 * 1024
# Slack sends a payload of a few kilobytes at once; a client still sending after this long is
# holding a connection and its buffer open, not delivering a request.
BODY_DEADLINE_SECONDS = 5.0
# Slack's signature window: a timestamp more than five minutes from our clock is refused
# (https://api.slack.com/authentication/verifying-requests-from-slack).
SIGNATURE_WINDOW_SECONDS = 5 * 60
# A Unix time in seconds has 10 digits until the year 2286; anything longer is not Slack's.
MAX_TIMESTAMP_DIGITS = 12
SIGNATURE_VERSION = "v0"
SIGNATURE_LENGTH = len("v0=") + 64  # hex of HMAC-SHA256

UNAUTHORIZED = "unauthorized"
TOO_LARGE = "request body too large"
TOO_SLOW = "request body too slow"
BAD_REQUEST = "bad request"
UNAVAILABLE = "try again"


class SeenRequests(Protocol):
    """Shared memory of accepted requests: True the first time any replica offers a key."""

    def first_sighting(self, key: str, now: datetime) -> bool: ...


class RateLimitedLog:
    """One log line per rejection, at most `burst` at once and then one every `every` seconds
    per client address (and the same bound over all addresses together), so a flood of junk
    writes a few lines, not a line per request. Rejections beyond that are only counted."""

    def __init__(
        self,
        *,
        burst: int = 5,
        every: float = 10.0,
        overall_burst: int = 20,
        overall_every: float = 1.0,
        max_addresses: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._every = every
        self._overall_burst = overall_burst
        self._overall_every = overall_every
        self._max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._overall = (float(overall_burst), clock())

    @staticmethod
    def _take(
        bucket: tuple[float, float], burst: int, every: float, now: float
    ) -> tuple[bool, tuple[float, float]]:
        tokens, since = bucket
        tokens = min(float(burst), tokens + (now - since) / every)
        if tokens >= 1:
            return True, (tokens - 1, now)
        return False, (tokens, now)

    def allow(self, address: str) -> bool:
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(address, (float(self._burst), now))
            allowed, bucket = self._take(bucket, self._burst, self._every, now)
            self._buckets[address] = bucket
            while len(self._buckets) > self._max_addresses:
                self._buckets.popitem(last=False)
            if not allowed:
                return False
            allowed, self._overall = self._take(
                self._overall, self._overall_burst, self._overall_every, now
            )
            return allowed


@dataclass(frozen=True)
class Admitted:
    """A request that passed the edge: its raw body, and whether Bolt should see it at all
    (False for a retry of an event already handled: acknowledge it and do nothing)."""

    body: bytes
    dispatch: bool = True


class Refused(Exception):
    """The edge's answer to a request it will not pass on."""

    def __init__(self, status: int, answer: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.answer = answer
        self.reason = reason  # for the log line and the metric label: fixed words, no input

    def response(self) -> Response:
        return PlainTextResponse(self.answer, status_code=self.status)


def _unauthorized(reason: str) -> Refused:
    return Refused(401, UNAUTHORIZED, reason)


def _bad_request(reason: str) -> Refused:
    return Refused(400, BAD_REQUEST, reason)


def _too_large() -> Refused:
    return Refused(413, TOO_LARGE, "body over the size cap")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature of the raw bytes (the same HMAC slack_sdk computes; computed here
    on bytes so that a body which is not UTF-8 is refused, not raised on)."""
    base = f"{SIGNATURE_VERSION}:{timestamp}:".encode() + body
    return f"{SIGNATURE_VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _timestamp(value: str | None, now: float) -> str:
    """The X-Slack-Request-Timestamp header, if it is a Unix time near ours: ASCII digits only
    (no sign, space, exponent or other script's digits), bounded in length."""
    if value is None or not value:
        raise _unauthorized("no timestamp")
    if len(value) > MAX_TIMESTAMP_DIGITS or not (value.isascii() and value.isdigit()):
        raise _unauthorized("malformed timestamp")
    if abs(now - int(value)) > SIGNATURE_WINDOW_SECONDS:
        raise _unauthorized("stale timestamp")
    return value


def _signature(value: str | None) -> str:
    if value is None or not value:
        raise _unauthorized("no signature")
    if len(value) != SIGNATURE_LENGTH or not value.isascii():
        raise _unauthorized("malformed signature")
    return value


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise _bad_request("malformed content-length")
    return int(value)


async def _read_capped(request: Request, cap: int, deadline: float) -> bytes:
    """The body, read chunk by chunk; past `cap` bytes, or `deadline` seconds, stop reading and
    refuse: a slow sender cannot keep its connection and buffer for long."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline):
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise _too_large()
                chunks.append(chunk)
    except ClientDisconnect:
        raise _bad_request("client went away") from None
    except TimeoutError:
        raise Refused(408, TOO_SLOW, "body not sent in time") from None
    return b"".join(chunks)


def parsed_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The payload as Bolt will read it (JSON for the Events API, a form with an optional
    `payload` field of JSON for commands and interactivity), or Refused 400 when it is not an
    object: invalid UTF-8, broken JSON, `payload=null`, a form sent as JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_request("body is not UTF-8") from None
    is_json = content_type.split(";")[0].strip().lower() == "application/json"
    try:
        if is_json or text.lstrip().startswith("{"):
            parsed: Any = json.loads(text)
        else:
            form = parse_qs(text, keep_blank_values=True, strict_parsing=False)
            payload = form.get("payload")
            parsed = json.loads(payload[0]) if payload else {k: v[0] for k, v in form.items()}
    except ValueError:
        raise _bad_request("body is not the JSON or form Slack sends") from None
    if not isinstance(parsed, dict):
        raise _bad_request("payload is not an object")
    return parsed


class SlackEdge:
    """Admits a request to Bolt or refuses it; see the module docstring for the order."""

    def __init__(
        self,
        signing_secret: str,
        seen: SeenRequests,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        body_deadline_seconds: float = BODY_DEADLINE_SECONDS,
        rejection_log: RateLimitedLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not signing_secret:
            raise ValueError("the HTTP edge needs the Slack signing secret")
        self._secret = signing_secret
        self._seen = seen
        self._cap = max_body_bytes
        self._deadline = body_deadline_seconds
        self._log = rejection_log or RateLimitedLog()
        self._clock = clock

    async def admit(self, request: Request) -> Admitted:
        """The request's body if it may reach Bolt; raises Refused otherwise."""
        length = _content_length(request)
        if length is not None and length > self._cap:
            raise _too_large()
        now = self._clock()
        timestamp = _timestamp(request.headers.get("x-slack-request-timestamp"), now)
        signature = _signature(request.headers.get("x-slack-signature"))
        body = await _read_capped(request, self._cap, self._deadline)
        expected = sign(self._secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise _unauthorized("bad signature")
        payload = parsed_body(body, request.headers.get("content-type", ""))
        event_id = payload.get("event_id") if payload.get("type") == "event_callback" else None
        if isinstance(event_id, str) and event_id:
            # Slack re-signs each retry of an event, so only the event id tells one; a second
            # delivery, retry or replay, is acknowledged and does nothing.
            first = await self._first_sighting(f"event:{event_id}")
            return Admitted(body, dispatch=first)
        if not await self._first_sighting(f"signature:{signature}"):
            raise _unauthorized("replayed signature")
        return Admitted(body)

    async def _first_sighting(self, key: str) -> bool:
        """Ask the shared table (blocking I/O, so off the event loop); a database that does
        not answer makes the request fail closed with 503, which Slack shows as an error."""
        moment = datetime.fromtimestamp(self._clock(), UTC)
        try:
            return await run_in_threadpool(self._seen.first_sighting, key, moment)
        except Exception as error:
            log.error("cannot record a Slack request as seen: %s", type(error).__name__)
            raise Refused(503, UNAVAILABLE, "replay table unavailable") from None

    def note(self, request: Request, refused: Refused) -> None:
        """Count the refusal; log one short line unless this address is over its budget."""
        SLACK_REJECTED.labels(str(refused.status)).inc()
        address = request.client.host if request.client else "unknown"
        if self._log.allow(address):
            log.warning(
                "refused a Slack request from %s: %s (%d)",
                address[:64],
                refused.reason,
                refused.status,
            )
