"""Slack's request signing: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:ts:body"))`."""

from __future__ import annotations

import hashlib
import hmac
import time

VERSION = "v0"
REPLAY_WINDOW = 60 * 5  # seconds, inclusive, as slack_sdk's SignatureVerifier


def signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def signed_headers(
    signing_secret: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    corrupt: bool = False,
) -> dict[str, str]:
    """The two headers Slack adds; `corrupt` flips the last hex digit of a correct signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = signature(signing_secret, ts, body)
    if corrupt:
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def verify(
    signing_secret: str, timestamp: str, body: bytes, sig: str, now: float | None = None
) -> bool:
    """What a receiver checks: the window, then a constant-time comparison."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    if age > REPLAY_WINDOW:
        return False
    return hmac.compare_digest(signature(signing_secret, timestamp, body), sig)
