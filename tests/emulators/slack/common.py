"""Shared pieces: the API error, the per-call context handlers receive, argument helpers."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import MethodSpec
    from .state import Workspace

JSON = dict[str, Any]
_ID_ALPHABET = string.ascii_uppercase + string.digits


class ApiError(Exception):
    """A Web API failure: HTTP 200 `{"ok": false, "error": ...}` unless `status` says otherwise."""

    def __init__(
        self,
        error: str,
        *,
        messages: list[str] | None = None,
        extra: JSON | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.extra = extra or {}
        self.status = status
        self.headers = headers or {}

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error": self.error}
        body.update(self.extra)
        if self.messages:
            body["response_metadata"] = {"messages": list(self.messages)}
        return body


def invalid_arguments(*messages: str) -> ApiError:
    return ApiError("invalid_arguments", messages=list(messages))


def missing_field(name: str, pointer: str = "") -> str:
    suffix = f" [json-pointer:{pointer}]" if pointer else ""
    return f"[ERROR] missing required field: {name}{suffix}"


@dataclass
class Ctx:
    """What a method handler gets: the workspace, the validated args and the response extras."""

    method: str
    args: JSON
    workspace: Workspace
    spec: MethodSpec
    base_url: str
    is_json: bool
    warnings: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        value = self.args.get(name)
        return value is not None and value != ""

    def str_arg(self, name: str, default: str | None = None) -> str | None:
        value = self.args.get(name)
        if value is None or value == "":
            return default
        return value if isinstance(value, str) else str(value)

    def require_str(self, name: str) -> str:
        value = self.str_arg(name)
        if value is None:
            raise invalid_arguments(missing_field(name))
        return value

    def bool_arg(self, name: str, default: bool = False) -> bool:
        value = self.args.get(name)
        if value is None or value == "":
            return default
        coerced = to_bool(value)
        return default if coerced is None else coerced

    def json_arg(self, name: str, bad_format: str = "invalid_arguments") -> Any:
        """A JSON-structured argument (blocks, view, attachments...): a string in form bodies."""
        value = self.args.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(
                    bad_format,
                    messages=[f"[ERROR] failed to parse JSON [json-pointer:/{name}]"]
                    if bad_format == "invalid_arguments"
                    else [],
                ) from None
        return value


Handler = Callable[[Ctx], JSON]


def to_bool(value: Any) -> bool | None:
    """Slack's boolean coercion: true/false, 1/0 (slack_sdk sends "1"/"0" in forms)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def new_id(prefix: str, length: int = 10) -> str:
    return prefix + "0" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length - 1))


def random_token(length: int = 8) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
