"""Request bodies checked against Vault's own OpenAPI document (parameter names and types).

The document is `tests/specs/vault/openapi.json`: upstream's, with only the paths under
`SERVED_PREFIXES` (see `tests/specs/trim_vault_openapi.py`). `GATEHOUSE_VAULT_OPENAPI` points
elsewhere, e.g. at the whole upstream document. It is loaded when the emulator starts: missing,
unreadable or lacking a served family of paths, the emulator refuses to start.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from tests.specs import SPECS, SpecFilesMissing, shown

from .common import JSON, bad_request, parse_duration

# The families of OpenAPI paths the emulator serves. The vendored document keeps every upstream
# path under these and nothing else, so a request never matches a different template than it
# would in the whole document.
SERVED_PREFIXES = (
    "/sys/health",
    "/sys/capabilities",
    "/sys/policies/acl/",
    "/sys/policy",
    "/sys/mounts",
    "/sys/auth",
    "/sys/leases",
    "/sys/renew",
    "/sys/revoke",
    "/sys/wrapping/",
    "/auth/token/",
    "/auth/{approle_mount_path}/",
    "/auth/{kubernetes_mount_path}/",
    "/{database_mount_path}/",
)
_ARBITRARY_INPUT = {"/sys/wrapping/wrap", "/{database_mount_path}/config/{name}"}
_MOUNT_PLACEHOLDERS = {
    "database": "{database_mount_path}",
    "approle": "{approle_mount_path}",
    "kubernetes": "{kubernetes_mount_path}",
}


def spec_path() -> Path:
    override = os.environ.get("GATEHOUSE_VAULT_OPENAPI")
    if override:
        return Path(override)
    return SPECS / "vault" / "openapi.json"


def load() -> JSON:
    """The OpenAPI document, or SpecFilesMissing saying in one line what is wrong with it."""
    return _load(spec_path())


@cache
def _load(path: Path) -> JSON:
    where = shown(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecFilesMissing(
            f"vault emulator: spec file missing at {where}; restore it with "
            "`git checkout -- tests/specs/vault` or set GATEHOUSE_VAULT_OPENAPI"
        ) from None
    except (OSError, ValueError) as error:
        raise SpecFilesMissing(f"vault emulator: cannot read {where}: {error}") from None
    paths = document.get("paths") if isinstance(document, dict) else None
    if not isinstance(paths, dict):
        raise SpecFilesMissing(f"vault emulator: {where} is not an OpenAPI document (no paths)")
    absent = [prefix for prefix in SERVED_PREFIXES if not any(p.startswith(prefix) for p in paths)]
    if absent:
        raise SpecFilesMissing(
            f"vault emulator: {where} describes no path under {', '.join(absent)}; regenerate it "
            "with `python -m tests.specs.trim_vault_openapi UPSTREAM_OPENAPI_JSON`"
        )
    loaded: JSON = document
    return loaded


@cache
def _routes(path: Path) -> list[tuple[re.Pattern[str], str]]:
    document = _load(path)
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
    location = spec_path()
    document = _load(location)
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
