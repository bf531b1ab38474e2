"""One Web API call, start to end: method lookup, auth, faults, rate limits, validation, handler,
and Slack's envelope (warnings in both `warning` and `response_metadata.warnings`)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import methods_chat, methods_conversations, methods_misc, methods_views
from .common import JSON, ApiError, Ctx, Handler
from .spec import MethodSpec, get_spec, validate_args
from .state import Workspace

log = logging.getLogger(__name__)

HANDLERS: dict[str, Handler] = {
    **methods_conversations.HANDLERS,
    **methods_chat.HANDLERS,
    **methods_views.HANDLERS,
    **methods_misc.HANDLERS,
}
TIER_PER_MINUTE = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}
_WARNING_TEXT = {
    "missing_charset": "[WARN] A Content-Type HTTP header was presented but did not declare a "
    "charset, such as a 'utf-8'",
}


@dataclass
class Outcome:
    status: int
    body: JSON
    headers: dict[str, str] = field(default_factory=dict)
    handled: bool = True


@dataclass(frozen=True)
class Outage:
    """Every Web API call answered `status` until `until` (time.monotonic), or until ended."""

    status: int
    retry_after: int
    until: float | None

    def answer(self, headers: dict[str, str]) -> Outcome:
        if self.status == 429:
            return Outcome(
                429,
                {"ok": False, "error": "ratelimited"},
                {**headers, "Retry-After": str(self.retry_after)},
            )
        return Outcome(
            self.status,
            {"ok": False, "error": _OUTAGE_ERRORS.get(self.status, "fatal_error")},
            headers,
        )


# What Slack's body says with each status it answers when it is failing.
_OUTAGE_ERRORS = {
    500: "internal_error",
    502: "fatal_error",
    503: "service_unavailable",
    504: "request_timeout",
}


@dataclass
class _Queued:
    remaining: int
    error: str
    retry_after: int = 0


class RateLimiter:
    """Slack's tiers per method per minute, and chat.postMessage's ~1 message/s per channel."""

    def __init__(self, post_message_burst: int = 1) -> None:
        self.burst = post_message_burst
        self.calls: dict[str, deque[float]] = defaultdict(deque)
        self.posts: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def check(self, spec: MethodSpec, args: JSON, now: float) -> int | None:
        """None when the call may go ahead, else the Retry-After seconds."""
        with self.lock:
            if spec.name == "chat.postMessage":
                window = self.posts[str(args.get("channel"))]
                return self._take(window, now, 1.0, self.burst)
            limit = TIER_PER_MINUTE.get(spec.rate_tier or "")
            if limit is None:
                return None
            return self._take(self.calls[spec.name], now, 60.0, limit)

    @staticmethod
    def _take(window: deque[float], now: float, span: float, limit: int) -> int | None:
        while window and now - window[0] >= span:
            window.popleft()
        if len(window) >= limit:
            return max(1, math.ceil(span - (now - window[0])))
        window.append(now)
        return None


class Dispatcher:
    def __init__(
        self,
        workspace: Workspace,
        bot_token: str,
        scopes: Iterable[str] | None,
        enforce_rate_limits: bool,
        post_message_burst: int = 1,
    ) -> None:
        self.workspace = workspace
        self.tokens = {bot_token}
        self.revoked: set[str] = set()
        self.scopes = None if scopes is None else frozenset(scopes)
        self.enforce_rate_limits = enforce_rate_limits
        self.limiter = RateLimiter(post_message_burst)
        self.faults: dict[str, list[_Queued]] = defaultdict(list)
        self.outage: Outage | None = None
        self.lock = threading.Lock()

    def queue(self, method: str, error: str, count: int, retry_after: int = 0) -> None:
        with self.lock:
            self.faults[method].append(_Queued(count, error, retry_after))

    def current_outage(self) -> Outage | None:
        """The outage in force now; one whose window has passed is over."""
        with self.lock:
            outage = self.outage
            if outage is not None and outage.until is not None and time.monotonic() >= outage.until:
                self.outage = outage = None
            return outage

    def _take_fault(self, method: str) -> _Queued | None:
        with self.lock:
            queue = self.faults.get(method) or []
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return fault

    def call(
        self,
        method: str,
        args: JSON,
        token: str | None,
        *,
        is_json: bool,
        content_type: str,
        base_url: str,
    ) -> Outcome:
        spec = get_spec(method)
        if spec is None:
            return Outcome(200, {"ok": False, "error": "unknown_method", "req_method": method})
        headers = {"x-accepted-oauth-scopes": ",".join(spec.bot_scopes)}
        if self.scopes is not None:
            headers["x-oauth-scopes"] = ",".join(sorted(self.scopes))
        outage = self.current_outage()
        if outage is not None:
            return outage.answer(headers)
        try:
            self._authenticate(spec, token)
            fault = self._take_fault(method)
            if fault is not None and fault.retry_after:
                retry = str(fault.retry_after)
                return Outcome(
                    429, {"ok": False, "error": "ratelimited"}, {**headers, "Retry-After": retry}
                )
            if fault is not None:
                return Outcome(200, {"ok": False, "error": fault.error}, headers)
            if self.enforce_rate_limits:
                retry_after = self.limiter.check(spec, args, self.workspace.clock.now())
                if retry_after is not None:
                    return Outcome(
                        429,
                        {"ok": False, "error": "ratelimited"},
                        {**headers, "Retry-After": str(retry_after)},
                    )
            validate_args(spec, args, is_json=is_json)
            ctx = Ctx(
                method=method,
                args=args,
                workspace=self.workspace,
                spec=spec,
                base_url=base_url,
                is_json=is_json,
            )
            ctx.warnings.extend(_charset_warnings(content_type, is_json))
            handler = HANDLERS.get(method)
            with self.workspace.lock:
                body = handler(ctx) if handler is not None else {"ok": True}
            if handler is None:
                log.warning("slack emulator: %s has no model; answered {'ok': true}", method)
            return Outcome(200, _with_warnings(body, ctx.warnings), headers, handler is not None)
        except ApiError as error:
            return Outcome(error.status, error.body(), {**headers, **error.headers})

    def _authenticate(self, spec: MethodSpec, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed")
        if token in self.revoked:
            raise ApiError("token_revoked")
        if token not in self.tokens:
            raise ApiError("invalid_auth")
        if not spec.bot_scopes and not spec.no_scope_required and spec.name != "auth.test":
            raise ApiError("not_allowed_token_type")
        if self.scopes is not None and spec.bot_scopes and not self.scopes & set(spec.bot_scopes):
            raise ApiError(
                "missing_scope",
                extra={
                    "needed": ",".join(spec.bot_scopes),
                    "provided": ",".join(sorted(self.scopes)),
                },
            )


def _charset_warnings(content_type: str, is_json: bool) -> list[str]:
    lowered = content_type.lower()
    if is_json and "charset" not in lowered:
        return ["missing_charset"]
    if lowered.startswith("application/x-www-form-urlencoded") and "charset" in lowered:
        return ["superfluous_charset"]
    return []


def _with_warnings(body: JSON, warnings: list[str]) -> JSON:
    if not warnings:
        return body
    out: dict[str, Any] = dict(body)
    out["warning"] = ",".join(warnings)
    metadata = dict(out.get("response_metadata") or {})
    metadata["warnings"] = list(warnings)
    messages = [_WARNING_TEXT[w] for w in warnings if w in _WARNING_TEXT]
    if messages:
        metadata["messages"] = messages
    out["response_metadata"] = metadata
    return out
