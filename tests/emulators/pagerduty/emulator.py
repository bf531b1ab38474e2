"""PagerDutyEmulator: `GET /oncalls` and `GET /users` of PagerDuty's REST API v2 on loopback.

Every request is checked against the PagerDuty contract (`tests/specs/pagerduty/contract.yaml`,
read by `contract.py`): the API key in `Authorization: Token token=...` (401 otherwise), the query
parameters the operation takes (400 with PagerDuty's error body otherwise), and every answer is
validated against the shape of its status before it is sent; an answer that breaks the contract
goes out as a 500 instead, so no test passes on a shape PagerDuty would never send.

Like PagerDuty: `include[]=users` turns each entry's user into the full user object; `query` on
/users matches e-mail addresses as well as names; `limit` is lowered to the contract's maximum.
Faults on demand: an error status, a slow answer, a body that is not JSON, a revoked key, or the
server stopped outright.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.emulators.loopback import LoopbackHandler, LoopbackServer, Serving

from . import contract

JSON = dict[str, Any]
DEFAULT_TOKEN = "y_NbAkKc66ryYTWUXYEu"  # the shape of a PagerDuty REST API key
_OPERATIONS = {"/oncalls": "listOnCalls", "/users": "listUsers"}
_COLLECTIONS = {
    "user": "users",
    "schedule": "schedules",
    "escalation_policy": "escalation_policies",
}


def new_id() -> str:
    """`PXPGF42`: PagerDuty's object ids."""
    return "P" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(6))


@dataclass
class User:
    id: str
    name: str
    email: str


@dataclass
class Entry:
    user_id: str
    escalation_policy_id: str
    escalation_level: int
    schedule_id: str | None
    start: datetime
    end: datetime


@dataclass
class Call:
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    status: int
    body: Any


@dataclass
class _Fault:
    remaining: int
    status: int = 500
    raw: bytes | None = None  # sent as is (not JSON) when set


@dataclass
class _State:
    users: dict[str, User] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # schedule / policy id -> name
    entries: list[Entry] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    delay: float = 0.0
    revoked: bool = False


class PagerDutyEmulator:
    """Point `PagerDutyOnCall(base_url=emulator.url, token=emulator.token)` at it."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, host: str = "127.0.0.1") -> None:
        self.token = token
        self.host = host
        self.port = 0
        self.calls: list[Call] = []
        self._state = _State()
        self._lock = threading.Lock()
        self._serving: Serving | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve on loopback. SpecFilesMissing (one line) first if the contract is not usable,
        rather than a failure in the middle of a request."""
        contract.load()
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self._serving = Serving(server, "pagerduty-emulator")
        self.port = self._serving.port

    def stop(self) -> None:
        """Stop answering: later calls find the port closed, as when PagerDuty is down."""
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    # -- the account ----------------------------------------------------------------------------

    def add_user(self, name: str, email: str) -> str:
        user = User(new_id(), name, email)
        with self._lock:
            self._state.users[user.id] = user
        return user.id

    def name(self, object_id: str, name: str) -> str:
        """Give a schedule or escalation policy id its display name; returns the id."""
        with self._lock:
            self._state.names[object_id] = name
        return object_id

    def put_on_call(
        self,
        user_id: str,
        *,
        escalation_policy: str,
        schedule: str | None = None,
        level: int = 1,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        now = datetime.now(UTC)
        entry = Entry(
            user_id,
            escalation_policy,
            level,
            schedule,
            start or now - timedelta(hours=2),
            end or now + timedelta(hours=8),
        )
        with self._lock:
            self._state.entries.append(entry)

    # -- faults ---------------------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1) -> None:
        """The next `count` calls get `status` with PagerDuty's error body."""
        with self._lock:
            self._state.faults.append(_Fault(count, status))

    def send_malformed_next(self, count: int = 1, raw: bytes = b"<html>502 Bad Gateway") -> None:
        """The next `count` calls get HTTP 200 with a body that is not PagerDuty's JSON."""
        with self._lock:
            self._state.faults.append(_Fault(count, 200, raw))

    def answer_slowly(self, seconds: float) -> None:
        """Wait `seconds` before every answer (0 to stop)."""
        with self._lock:
            self._state.delay = seconds

    def revoke_token(self) -> None:
        """The API key stops working: 401 from now on."""
        with self._lock:
            self._state.revoked = True

    def calls_to(self, path: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.path == path]

    # -- answering ------------------------------------------------------------------------------

    def answer(
        self, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> tuple[int, Any]:
        """(status, body or raw bytes) for one GET, recorded."""
        with self._lock:
            delay = self._state.delay
        if delay:
            time.sleep(delay)
        status, body = self._answer(path, query, headers)
        with self._lock:
            self.calls.append(Call(path, query, headers, status, body))
        return status, body

    def _answer(
        self, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> tuple[int, Any]:
        with self._lock:
            revoked = self._state.revoked
        if revoked or headers.get("authorization") != f"Token token={self.token}":
            return 401, _error(2006, "Authentication failed")
        fault = self._take_fault()
        if fault is not None:
            return fault.status, fault.raw or _error(2000 + fault.status, "Emulated failure")
        if path not in _OPERATIONS:
            return 404, _error(2100, "Not Found")
        operation = contract.operation("GET", path)
        problems = contract.check_query(operation, query)
        if problems:
            return 400, _error(2001, "Invalid Input Provided", problems)
        if path == "/oncalls":
            body = self._oncalls(query)
            include_users = ("include[]", "users") in query
            schema = contract.oncall_with_users_schema() if include_users else None
        else:
            body = self._users(query)
            schema = None
        broken = contract.conforms(schema or operation.response_schema(200), body)
        if broken:
            return 500, _error(2000, "The emulator's answer breaks the PagerDuty contract", broken)
        return 200, body

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if not self._state.faults:
                return None
            fault = self._state.faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._state.faults.pop(0)
            return fault

    def _oncalls(self, query: list[tuple[str, str]]) -> JSON:
        def values(name: str) -> set[str]:
            return {value for key, value in query if key == name}

        params = dict(query)
        now = datetime.now(UTC)
        since = _moment(params.get("since")) or now
        until = _moment(params.get("until")) or now
        schedules, policies, users = (
            values("schedule_ids[]"),
            values("escalation_policy_ids[]"),
            values("user_ids[]"),
        )
        with self._lock:
            entries = [
                entry
                for entry in self._state.entries
                if (not schedules or entry.schedule_id in schedules)
                and (not policies or entry.escalation_policy_id in policies)
                and (not users or entry.user_id in users)
                and entry.start <= until
                and entry.end >= since
            ]
            include_users = "users" in values("include[]")
            items = [self._entry_json(entry, include_users) for entry in entries]
        return _page("oncalls", items, params)

    def _entry_json(self, entry: Entry, include_users: bool) -> JSON:
        user = self._state.users[entry.user_id]
        item: JSON = {
            "escalation_policy": self._reference("escalation_policy", entry.escalation_policy_id),
            "escalation_level": entry.escalation_level,
            "user": self._user_json(user) if include_users else self._reference("user", user.id),
            "start": entry.start.isoformat(),
            "end": entry.end.isoformat(),
        }
        if entry.schedule_id is not None:
            item["schedule"] = self._reference("schedule", entry.schedule_id)
        return item

    def _users(self, query: list[tuple[str, str]]) -> JSON:
        params = dict(query)
        wanted = (params.get("query") or "").lower()
        with self._lock:
            items = [
                self._user_json(user)
                for user in self._state.users.values()
                if wanted in user.name.lower() or wanted in user.email.lower()
            ]
        return _page("users", items, params)

    def _reference(self, kind: str, object_id: str) -> JSON:
        if kind == "user":
            name = self._state.users[object_id].name
        else:
            name = self._state.names.get(object_id, object_id)
        collection = _COLLECTIONS[kind]
        return {
            "id": object_id,
            "type": f"{kind}_reference",
            "summary": name,
            "self": f"{self.url}/{collection}/{object_id}",
            "html_url": f"https://gatehouse-test.pagerduty.com/{collection}/{object_id}",
        }

    def _user_json(self, user: User) -> JSON:
        return {
            **self._reference("user", user.id),
            "type": "user",
            "name": user.name,
            "email": user.email,
            "time_zone": "Etc/UTC",
            "color": "green",
            "role": "user",
            "avatar_url": "https://pd-static-assets.pagerduty.com/users/blank-avatar.png",
            "description": None,
            "invitation_sent": False,
            "created_via_sso": False,
            "job_title": "",
            "teams": [],
            "contact_methods": [],
            "notification_rules": [],
        }


def _page(key: str, items: list[JSON], params: dict[str, str]) -> JSON:
    default_limit, max_limit = contract.page_limits()
    limit = min(int(params.get("limit") or default_limit), max_limit)
    offset = int(params.get("offset") or 0)
    total = len(items) if params.get("total") == "true" else None
    return {
        key: items[offset : offset + limit],
        "limit": limit,
        "offset": offset,
        "more": offset + limit < len(items),
        "total": total,
    }


def _error(code: int, message: str, errors: list[str] | None = None) -> JSON:
    error: JSON = {"message": message, "code": code}
    if errors:
        error["errors"] = errors
    return {"error": error}


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class _Server(LoopbackServer):
    emulator: PagerDutyEmulator


class _Handler(LoopbackHandler):
    server: _Server
    methods = frozenset({"GET"})

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, body = self.server.emulator.answer(parts.path, query, headers)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up waiting on a slow answer
            self.wfile.write(raw)


@contextmanager
def running_pagerduty(**kwargs: Any) -> Iterator[PagerDutyEmulator]:
    """A started emulator, stopped afterwards."""
    emulator = PagerDutyEmulator(**kwargs)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
