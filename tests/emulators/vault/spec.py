"""Request bodies checked against Vault's own OpenAPI document (parameter names and types)."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from functools import cache
from pathlib import Path
from typing import Any

from .common import JSON, bad_request, parse_duration

_ARBITRARY_INPUT = {"/sys/wrapping/wrap", "/{database_mount_path}/config/{name}"}
_MOUNT_PLACEHOLDERS = {
    "database": "{database_mount_path}",
    "approle": "{approle_mount_path}",
    "kubernetes": "{kubernetes_mount_path}",
}
_lock = threading.Lock()
_warned = False


def spec_path() -> Path:
    override = os.environ.get("GATEHOUSE_VAULT_OPENAPI")
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parents[3]
    return (repo / ".." / "shared" / "specs" / "vault" / "openapi.json").resolve()


@cache
def _load(path: Path) -> JSON | None:
    try:
        document: JSON = json.loads(path.read_text())
        return document
    except (OSError, ValueError):
        return None


@cache
def _routes(path: Path) -> list[tuple[re.Pattern[str], str]]:
    document = _load(path)
    if document is None:
        return []
    routes = []
    for template in document["paths"]:
        pattern = re.escape(template.rstrip("/"))
        pattern = re.sub(
            r"\\\{(\w+)\\\}",
            lambda m: (
                re.escape("{" + m.group(1) + "}")
                if m.group(1).endswith("_mount_path")
                else "(?:.+)"
                if m.group(1) in {"prefix", "url_lease_id", "path"}
                else "[^/]+"
            ),
            pattern,
        )
        routes.append((re.compile(pattern + "/?"), template))
    # Literal paths before templated ones, longer literal prefixes first.
    routes.sort(key=lambda r: (r[1].count("{") - r[1].count("_mount_path}"), -len(r[1])))
    return routes


def canonical(path: str, mount: str, mount_type: str) -> str:
    """`db2/creds/x` on a database mount -> `/{database_mount_path}/creds/x`."""
    placeholder = _MOUNT_PLACEHOLDERS.get(mount_type)
    if placeholder is None:
        return "/" + path
    rest = path[len(mount) :]
    prefix = "auth/" if mount.startswith("auth/") else ""
    return f"/{prefix}{placeholder}/{rest}"


def _resolve(document: JSON, schema: JSON) -> JSON:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def validate(path: str, mount: str, mount_type: str, body: JSON) -> list[str]:
    """Warnings for unknown parameters; a 400 for a parameter of the wrong type."""
    global _warned
    location = spec_path()
    document = _load(location)
    if document is None:
        with _lock:
            if not _warned:
                _warned = True
                print(
                    f"vault emulator: OpenAPI spec not found at {location}; "
                    "request bodies are not validated",
                    file=sys.stderr,
                )
        return []
    concrete = canonical(path, mount, mount_type)
    template = next((t for rx, t in _routes(location) if rx.fullmatch(concrete)), None)
    if template is None:
        return []
    operation = document["paths"][template].get("post")
    if not operation or "requestBody" not in operation:
        return []
    schema = _resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
    properties: dict[str, Any] = dict(schema.get("properties", {}))
    for parameter in document["paths"][template].get("parameters", []):
        if parameter.get("in") == "path" and not parameter["name"].endswith("_mount_path"):
            properties.setdefault(parameter["name"], parameter.get("schema", {}))
    arbitrary = template in _ARBITRARY_INPUT or schema.get("additionalProperties") is True
    unknown = sorted(k for k in body if k not in properties)
    for key, value in body.items():
        if key in properties and value is not None:
            _check(key, value, _resolve(document, properties[key]))
    if unknown and not arbitrary:
        return [f"Endpoint ignored these unrecognized parameters: [{' '.join(unknown)}]"]
    return []


def _fail(key: str, value: object, detail: str) -> None:
    shown = json.dumps(value) if not isinstance(value, str) else value
    raise bad_request(
        f'Field validation failed: error converting input {shown} for field "{key}": {detail}'
    )


def _check(key: str, value: object, schema: JSON) -> None:
    """Vault's weak decoding: what mapstructure/parseutil would accept for the field type."""
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "string" and fmt in ("duration", "seconds"):
        if isinstance(value, dict | list):
            _fail(key, value, "could not parse duration")
        parse_duration(value, key)
    elif kind == "string":
        if isinstance(value, dict | list):
            _fail(key, value, "expected type 'string', got unconvertible type")
    elif kind == "integer":
        if isinstance(value, bool | int):
            return
        if isinstance(value, float) and value.is_integer():
            return
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return
        _fail(key, value, "cannot parse value as integer")
    elif kind == "boolean":
        if isinstance(value, bool) or value in (0, 1):
            return
        if isinstance(value, str) and value.lower() in {"1", "0", "t", "f", "true", "false"}:
            return
        _fail(key, value, "cannot parse value as boolean")
    elif kind == "array":
        if isinstance(value, dict):
            _fail(key, value, "source data must be an array or slice, got map")
        items = schema.get("items", {}).get("type")
        if (
            isinstance(value, list)
            and items == "string"
            and any(isinstance(item, dict | list) for item in value)
        ):
            _fail(key, value, "expected type 'string', got unconvertible type")
    elif kind == "object":
        if isinstance(value, dict):
            return
        if fmt == "kvpairs" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return
        _fail(key, value, "expected a map, got '" + type(value).__name__ + "'")
