"""Who is on call, from PagerDuty's REST API v2 (httpx, sync): implements the OnCall port.

A Slack user is matched to PagerDuty by e-mail: Slack `users.info` gives the address,
`GET /users?query=` the PagerDuty user. `GET /oncalls` lists the entries of a schedule or an
escalation policy right now. Answers are cached briefly. Connection errors, 429 and 5xx are
retried; a timeout, a refused key or an unreadable answer raises OnCallUnavailable at once, so
the caller falls back to ordinary approval instead of waiting.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx

from bot.domain.errors import ChatError, OnCallUnavailable
from bot.domain.oncall import OnCallShift
from bot.domain.ports import Directory
from bot.domain.rules import DynamicGroup, GroupSource
from integrations.ttl_cache import TtlCache

PAGERDUTY_API = "https://api.pagerduty.com"
ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_SIZE = 100
MAX_PAGES = 10
_FILTERS = {
    GroupSource.PAGERDUTY_SCHEDULE: "schedule_ids[]",
    GroupSource.PAGERDUTY_ESCALATION_POLICY: "escalation_policy_ids[]",
}


@dataclass(frozen=True)
class _Entry:
    """One PagerDuty on-call entry, with the e-mail of the user on call."""

    shift: OnCallShift  # user_id (the Slack user) is filled in once known
    email: str


class PagerDutyOnCall:
    """The OnCall port over PagerDuty. `token` is a REST API key (read access is enough)."""

    def __init__(
        self,
        *,
        token: str,
        directory: Directory,
        base_url: str = PAGERDUTY_API,
        timeout: float = 3.0,
        retries: int = 2,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._directory = directory
        self._timeout = timeout
        self._retries = retries
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={
                "Authorization": f"Token token={token}",
                "Accept": ACCEPT,
                "Content-Type": "application/json",
            },
        )
        self._entries_cache: TtlCache[tuple[_Entry, ...]] = TtlCache(cache_seconds, clock)
        self._users_cache: TtlCache[str | None] = TtlCache(cache_seconds, clock)

    def close(self) -> None:
        self._http.close()

    # -- the port ------------------------------------------------------------------------------

    def shift_of(self, user_id: str, group: DynamicGroup) -> OnCallShift | None:
        email = self._slack(lambda: self._directory.email_of(user_id))
        if email is None:
            return None
        pagerduty_user = self._pagerduty_user(email)
        if pagerduty_user is None:
            return None
        mine = [
            e.shift for e in self._entries(group) if e.shift.pagerduty_user_id == pagerduty_user
        ]
        if not mine:
            return None
        return replace(min(mine, key=lambda shift: shift.escalation_level), user_id=user_id)

    def users_on_call(self, group: DynamicGroup) -> frozenset[str]:
        found: set[str] = set()
        for email in sorted({entry.email for entry in self._entries(group)}):
            user = self._slack(partial(self._directory.user_by_email, email))
            if user is not None:
                found.add(user)
        return frozenset(found)

    def check(self) -> None:
        """Raise OnCallUnavailable unless PagerDuty accepts the key (for `gatehouse doctor`)."""
        self._get("/users", [("limit", "1")])

    # -- PagerDuty -----------------------------------------------------------------------------

    def _pagerduty_user(self, email: str) -> str | None:
        def load() -> str | None:
            body = self._get("/users", [("query", email), ("limit", "25")])
            for user in _list(body, "users"):  # the query also matches names and parts
                if str(user.get("email", "")).lower() == email.lower():
                    try:
                        return _text(user, "id")
                    except ValueError:
                        raise OnCallUnavailable("PagerDuty sent a user without an id") from None
            return None

        return self._users_cache.get(email.lower(), load)

    def _entries(self, group: DynamicGroup) -> tuple[_Entry, ...]:
        def load() -> tuple[_Entry, ...]:
            entries: list[_Entry] = []
            for page in range(MAX_PAGES):
                params = [
                    (_FILTERS[group.source], group.ref),
                    ("include[]", "users"),
                    ("limit", str(PAGE_SIZE)),
                    ("offset", str(page * PAGE_SIZE)),
                ]
                body = self._get("/oncalls", params)
                entries += [_entry(item) for item in _list(body, "oncalls")]
                if body.get("more") is not True:
                    return tuple(entries)
            # A partial list would silently leave approvers out: fall back, with a note.
            raise OnCallUnavailable(
                f"PagerDuty lists more than {MAX_PAGES * PAGE_SIZE} on-call entries for "
                f"{group.ref}; narrow the group"
            )

        return self._entries_cache.get((group.source, group.ref), load)

    def _get(self, path: str, params: Sequence[tuple[str, str]]) -> dict[str, Any]:
        problem = "PagerDuty could not be reached"
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(0.2 * 2 ** (attempt - 1))
            try:
                response = self._http.get(path, params=list(params))
            except httpx.TimeoutException:
                raise OnCallUnavailable(
                    f"PagerDuty did not answer within {self._timeout:g} s"
                ) from None
            except httpx.TransportError as error:
                problem = f"PagerDuty could not be reached ({type(error).__name__})"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"PagerDuty answered {response.status_code}"
                continue
            return _body(response)
        raise OnCallUnavailable(f"{problem} after {self._retries + 1} attempts")

    @staticmethod
    def _slack(lookup: Callable[[], str | None]) -> str | None:
        try:
            return lookup()
        except ChatError as error:
            raise OnCallUnavailable(f"matching people by e-mail failed: {error.message}") from None


def _body(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status == 401:
        raise OnCallUnavailable(
            "PagerDuty refused the API key (401): check GATEHOUSE_PAGERDUTY_TOKEN"
        )
    if status == 403:
        raise OnCallUnavailable(
            "PagerDuty did not allow the lookup (403): the key needs read access to "
            "users and on-calls"
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if status >= 400:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        raise OnCallUnavailable(
            f"PagerDuty refused the lookup ({status}: {message or 'no reason'})"
        )
    if not isinstance(body, dict):
        raise OnCallUnavailable("PagerDuty sent an answer Gatehouse could not read")
    return body


def _list(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise OnCallUnavailable(f"PagerDuty sent {key} Gatehouse could not read")
    return items


def _entry(item: dict[str, Any]) -> _Entry:
    """One item of `GET /oncalls?include[]=users`; its user is the full user object."""
    try:
        user = item["user"]
        schedule = item.get("schedule")
        shift = OnCallShift(
            user_id="",
            pagerduty_user_id=_text(user, "id"),
            escalation_policy_id=_text(item["escalation_policy"], "id"),
            escalation_level=int(item["escalation_level"]),
            schedule_id=_text(schedule, "id") if schedule else None,
            start=_moment(item.get("start")),
            end=_moment(item.get("end")),
        )
        return _Entry(shift, _text(user, "email"))
    except (KeyError, TypeError, ValueError) as error:
        raise OnCallUnavailable(
            f"PagerDuty sent an on-call entry Gatehouse could not read ({error})"
        ) from None


def _text(mapping: object, key: str) -> str:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, str) or not value:
        raise ValueError(f"no {key}")
    return value


def _moment(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a time that is not text")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time without a zone")
    return moment.astimezone(UTC)
