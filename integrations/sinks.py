"""Audit sinks over httpx: a signed JSON webhook, and Splunk HTTP Event Collector (HEC).

Both receive the records of bot.domain.export (`audit_event` and `audit_checkpoint`, each with a
unique `id` to deduplicate on), in delivery order, one batch per request.

Webhook (GATEHOUSE_AUDIT_WEBHOOK_URL, GATEHOUSE_AUDIT_WEBHOOK_SECRET)
    POST <url> with Content-Type: application/json and the body `{"records": [...]}`.
    X-Gatehouse-Timestamp: the Unix time of sending, in whole seconds.
    X-Gatehouse-Signature: `sha256=` + hex HMAC-SHA256, keyed with the shared secret (UTF-8),
    of the timestamp, a dot, then the raw body bytes: `<timestamp>.<body>`.
    A receiver recomputes the HMAC over the exact bytes it received, compares in constant time,
    and rejects a timestamp more than 5 minutes from its own clock (a replayed request).
    Any 2xx accepts the batch. 408, 429, 5xx, timeouts and connection errors are retried with
    backoff; any other answer (a redirect, 400, 401, 403, 404...) is a configuration error.

Splunk HEC (GATEHOUSE_SPLUNK_HEC_URL, GATEHOUSE_SPLUNK_HEC_TOKEN, optional index and source)
    POST <url>/services/collector/event with `Authorization: Splunk <token>`; the body is one
    JSON event object per record, newline-separated: `time` (epoch seconds), `host`, `source`,
    `sourcetype` (`gatehouse:audit_event` or `gatehouse:audit_checkpoint`), `index` when set,
    and the record as `event`. A batch is accepted only by a 2xx whose JSON `code` is 0. 429 and
    5xx (8 internal error, 9 server busy, 18-20 unhealthy) are retried with backoff; 400, 401
    and 403 (token disabled or invalid, incorrect index, bad data, indexer acknowledgement
    required) are configuration errors. Indexer acknowledgement is not used: turn it off on
    the token.

Configuration errors are never dropped either: the batch is kept and tried again slowly, and
the failure is logged loudly by the caller. Messages name the sink, never its URL or secret.
"""

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from bot.domain.errors import SinkError, SinkMisconfigured, SinkUnavailable
from bot.domain.export import ExportRecord

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SIGNATURE_HEADER = "X-Gatehouse-Signature"
TIMESTAMP_HEADER = "X-Gatehouse-Timestamp"
USER_AGENT = "gatehouse-audit-export"
HEC_EVENT_PATH = "/services/collector/event"
HEC_HEALTH_PATH = "/services/collector/health"
HEC_OK = 0
HEC_HEALTHY = 17
HEC_NO_DATA = 5
_ERROR_BODY_CHARS = 200
_HEC_HINTS = {
    1: "the token is disabled: enable it or set another GATEHOUSE_SPLUNK_HEC_TOKEN",
    2: "no token was sent: set GATEHOUSE_SPLUNK_HEC_TOKEN",
    3: "the Authorization header was refused: check GATEHOUSE_SPLUNK_HEC_TOKEN",
    4: "the token is not known: check GATEHOUSE_SPLUNK_HEC_TOKEN",
    7: "the index is not allowed for this token: check GATEHOUSE_SPLUNK_HEC_INDEX",
    10: "the token requires indexer acknowledgement: turn it off for this token",
    11: "the token requires indexer acknowledgement: turn it off for this token",
}


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, `<timestamp>.<body>`)."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


class WebhookSink:
    """Implements AuditSink: a signed JSON POST per batch."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(
            timeout=TIMEOUT, headers={"User-Agent": USER_AGENT}, transport=transport
        )

    def send(self, records: Sequence[ExportRecord]) -> None:
        body = compact_json({"records": [record.body for record in records]})
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(self._secret, timestamp, body),
        }
        response = _post(self._client, self.name, self._url, content=body, headers=headers)
        if response.is_success:
            return
        detail = f"the webhook answered {response.status_code}: {_excerpt(response)}"
        if _worth_retrying(response.status_code):
            raise SinkUnavailable(detail)
        raise SinkMisconfigured(
            f"{detail} (check GATEHOUSE_AUDIT_WEBHOOK_URL and GATEHOUSE_AUDIT_WEBHOOK_SECRET)"
        )

    def check(self) -> str:
        """Post an empty, signed batch: the receiver answers, and accepts our signature."""
        self.send([])
        return "accepts a signed empty batch"

    def close(self) -> None:
        self._client.close()


class SplunkHecSink:
    """Implements AuditSink: a batch of HEC JSON events per request."""

    name = "splunk"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        index: str | None = None,
        source: str = "gatehouse",
        host: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base = url.rstrip("/").removesuffix(HEC_EVENT_PATH)
        self._index = index
        self._source = source
        self._host = host or socket.gethostname()
        self._client = httpx.Client(
            timeout=TIMEOUT,
            headers={"User-Agent": USER_AGENT, "Authorization": f"Splunk {token}"},
            transport=transport,
        )

    def hec_event(self, record: ExportRecord) -> dict[str, Any]:
        event: dict[str, Any] = {
            "time": round(record.at.timestamp(), 6),
            "host": self._host,
            "source": self._source,
            "sourcetype": f"gatehouse:{record.kind}",
            "event": record.body,
        }
        if self._index:
            event["index"] = self._index
        return event

    def send(self, records: Sequence[ExportRecord]) -> None:
        body = b"\n".join(compact_json(self.hec_event(record)) for record in records)
        response = _post(
            self._client,
            self.name,
            self._base + HEC_EVENT_PATH,
            content=body,
            headers={"Content-Type": "application/json"},
        )
        code, text = _hec_answer(response)
        if response.is_success and code == HEC_OK:
            return
        raise _hec_error(response.status_code, code, text)

    def check(self) -> str:
        """HEC's health endpoint, then an empty POST: `No data` (code 5) proves the token good."""
        try:
            health = self._client.get(self._base + HEC_HEALTH_PATH)
        except httpx.HTTPError as error:
            raise SinkUnavailable(f"cannot reach Splunk HEC ({type(error).__name__})") from None
        code, text = _hec_answer(health)
        if health.status_code != 200 or code != HEC_HEALTHY:
            raise SinkUnavailable(f"Splunk HEC is not healthy: {health.status_code} {text}")
        probe = _post(self._client, self.name, self._base + HEC_EVENT_PATH, content=b"")
        code, text = _hec_answer(probe)
        if code != HEC_NO_DATA:
            raise _hec_error(probe.status_code, code, text)
        return "healthy, and the token is accepted"

    def close(self) -> None:
        self._client.close()


def _post(
    client: httpx.Client,
    sink: str,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    try:
        return client.post(url, content=content, headers=headers)
    except httpx.HTTPError as error:
        raise SinkUnavailable(f"cannot reach the {sink} sink ({type(error).__name__})") from None


def _worth_retrying(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:_ERROR_BODY_CHARS] or response.reason_phrase


def _hec_answer(response: httpx.Response) -> tuple[int | None, str]:
    """HEC's JSON `code` and `text`; (None, an excerpt) when the body is not HEC's."""
    try:
        body = response.json()
    except ValueError:
        return None, _excerpt(response)
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        return None, _excerpt(response)
    text = str(body.get("text", ""))
    if "invalid-event-number" in body:
        text += f" (event {body['invalid-event-number']} of the batch)"
    return body["code"], text


def _hec_error(status: int, code: int | None, text: str) -> SinkError:
    detail = f"Splunk HEC answered {status}, code {code}: {text}"
    if _worth_retrying(status):
        return SinkUnavailable(detail)
    hint = _HEC_HINTS.get(code or -1, "check GATEHOUSE_SPLUNK_HEC_URL and the token's settings")
    return SinkMisconfigured(f"{detail} ({hint})")
