"""Shared helpers: the emulator clock, ids, durations, Vault's error type and time formats."""

from __future__ import annotations

import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

BASE62 = string.ascii_letters + string.digits
SYSTEM_DEFAULT_TTL = 768 * 3600  # 32 days, Vault's default_lease_ttl
SYSTEM_MAX_TTL = 768 * 3600  # 32 days, Vault's max_lease_ttl

JSON = dict[str, Any]


class Clock:
    """Wall time plus an offset that tests move forward with `advance`."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


class VaultError(Exception):
    """An error response: `{"errors": [...]}` with Vault's status code."""

    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(", ".join(errors))
        self.status = status
        self.errors = list(errors)


def permission_denied() -> VaultError:
    return VaultError(403, "permission denied")


def bad_request(message: str) -> VaultError:
    return VaultError(400, message)


def not_found() -> VaultError:
    """What Vault sends when a read or list finds nothing."""
    return VaultError(404)


@dataclass
class Reply:
    """What a handler returns: `data` and friends go into the envelope; `status` 204 = no body."""

    data: JSON | None = None
    status: int = 200
    auth: JSON | None = None
    lease_id: str = ""
    renewable: bool = False
    lease_duration: int = 0
    warnings: list[str] = field(default_factory=list)
    top_level: bool = False  # sys endpoints that also copy `data` to the top level
    raw: bytes | None = None  # a body sent as is (unwrap, health)
    created_accessor: str | None = None  # accessor of a token this request created
    secret: Secret | None = None  # a secret whose lease the core registers
    login: Login | None = None  # a successful login: the core issues the token

    def no_content_unless_warned(self) -> Reply:
        if self.warnings and self.status == 204:
            self.status = 200
        return self


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_token_id() -> str:
    return "hvs." + random_base62(24)


def new_accessor() -> str:
    return random_base62(24)


def new_uuid() -> str:
    return str(uuid.uuid4())


_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")


def parse_duration(value: object, field_name: str = "ttl") -> int:
    """Seconds from an int, a numeric string or a Go-style duration ("90s", "1h30m", "2d")."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise bad_request(f'error converting input {value} for field "{field_name}"')
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if text and _DURATION_PART.sub("", text) == "":
            total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
            return int(total)
    raise bad_request(
        f'Field validation failed: error converting input {value} for field "{field_name}": '
        f'time: invalid duration "{value}"'
    )


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole seconds: 3600 -> "1h0m0s", 90 -> "1m30s"."""
    total = round(seconds)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def rfc3339_nano(timestamp: float) -> str:
    """Go's RFC3339Nano: trailing zeros of the fraction dropped, `Z` for UTC."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def pg_timestamp(timestamp: float) -> str:
    """Go layout "2006-01-02 15:04:05-0700" in UTC, as Vault formats {{expiration}}."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S+0000")


def as_str_list(value: object) -> list[str]:
    """Vault's comma-string-slice: a list, or a comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [str(value)]


def as_bool(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in {"1", "t", "true"}
    return bool(value)


def as_int(value: object, default: int = 0) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    return int(str(value))


def sanitize_policies(policies: list[str], add_default: bool) -> list[str]:
    """policyutil.SanitizePolicies: trimmed, lowercased, deduped, sorted; `root` stands alone."""
    cleaned = {p.strip().lower() for p in policies if p.strip()}
    if "root" in cleaned:
        return ["root"]
    if add_default:
        cleaned.add("default")
    return sorted(cleaned)


@dataclass
class Secret:
    """A secret a backend hands out: the core registers its lease for the calling token."""

    ttl: int
    internal: dict[str, str]
    renewable: bool = True


@dataclass
class Request:
    """One API call as a backend sees it."""

    operation: str  # read, create, update, delete, list
    path: str  # full path without /v1/
    subpath: str  # the path inside the mount
    mount: str  # e.g. "database/" or "auth/approle/"
    body: JSON
    query: dict[str, str]
    now: float
    token: Any = None  # the calling tokens.Token, when authenticated
    sudo: bool = False  # whether the caller holds sudo on the path


@dataclass
class Login:
    """What an auth method returns on login; the core turns it into an orphan service token."""

    policies: list[str]
    display_name: str
    meta: dict[str, str]
    entity_key: str  # stable key for the entity this login maps to
    ttl: int = 0
    max_ttl: int = 0
    period: int = 0
    explicit_max_ttl: int = 0
    num_uses: int = 0
    no_default_policy: bool = False


def token_params(body: JSON, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The common `token_*` role parameters of auth methods (tokenutil), with legacy names."""
    params: dict[str, Any] = dict(current or {})
    legacy = {"token_policies": "policies", "token_ttl": "ttl", "token_max_ttl": "max_ttl",
              "token_period": "period", "token_num_uses": "num_uses"}  # fmt: skip
    for key, old in legacy.items():
        raw = body.get(key, body.get(old))
        if raw is None:
            continue
        if key == "token_policies":
            params[key] = sanitize_policies(as_str_list(raw), False)
        elif key == "token_num_uses":
            params[key] = as_int(raw)
        else:
            params[key] = parse_duration(raw, key)
    if body.get("token_explicit_max_ttl") is not None:
        params["token_explicit_max_ttl"] = parse_duration(body["token_explicit_max_ttl"])
    if body.get("token_no_default_policy") is not None:
        params["token_no_default_policy"] = as_bool(body["token_no_default_policy"], False)
    defaults: dict[str, Any] = {"token_policies": [], "token_no_default_policy": False}
    for key in ("token_ttl", "token_max_ttl", "token_period", "token_num_uses",
                "token_explicit_max_ttl"):  # fmt: skip
        defaults[key] = 0
    for key, default in defaults.items():
        params.setdefault(key, default)
    if params["token_max_ttl"] and params["token_ttl"] > params["token_max_ttl"]:
        raise bad_request('"token_ttl" cannot be greater than "token_max_ttl"')
    return params


def token_params_read(params: dict[str, Any]) -> JSON:
    return {
        **{k: params[k] for k in sorted(params)},
        "token_bound_cidrs": [],
        "token_type": "default",
        "policies": params["token_policies"],
        "ttl": params["token_ttl"],
        "max_ttl": params["token_max_ttl"],
        "period": params["token_period"],
        "num_uses": params["token_num_uses"],
    }


def login_from(params: dict[str, Any], **fields: Any) -> Login:
    return Login(
        policies=list(params["token_policies"]),
        ttl=params["token_ttl"],
        max_ttl=params["token_max_ttl"],
        period=params["token_period"],
        explicit_max_ttl=params["token_explicit_max_ttl"],
        num_uses=params["token_num_uses"],
        no_default_policy=params["token_no_default_policy"],
        **fields,
    )


class Readable(Protocol):
    def read_data(self) -> JSON: ...


def read_or_delete(req: Request, items: MutableMapping[str, Any], name: str) -> Reply | None:
    """The read and delete of a named config object (a role, a connection); None otherwise."""
    if req.operation == "read":
        item = items.get(name)
        if item is None:
            raise not_found()
        return Reply(data=item.read_data())
    if req.operation == "delete":
        items.pop(name, None)
        return Reply(status=204)
    return None
