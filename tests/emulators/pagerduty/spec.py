"""PagerDuty's own OpenAPI document (`specs/pagerduty/rest_openapiv3.json`), read at runtime:
the query parameters each operation takes, and the schemas its answers must fit.

`GATEHOUSE_PAGERDUTY_SPEC` overrides the location. OpenAPI 3.0's `nullable` is turned into JSON
Schema (`type: [X, "null"]`) so jsonschema can check answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

JSON = dict[str, Any]


def spec_path() -> Path:
    override = os.environ.get("GATEHOUSE_PAGERDUTY_SPEC")
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parents[3]
    return (repo / ".." / "shared" / "specs" / "pagerduty" / "rest_openapiv3.json").resolve()


@cache
def document() -> JSON:
    loaded: JSON = json.loads(spec_path().read_text(encoding="utf-8"))
    return {**loaded, "components": _json_schema(loaded["components"])}


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: `nullable: true` becomes a null alternative."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _resolve(node: Any) -> Any:
    """Follow a local `$ref` (`#/components/...`) to what it names."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    parameters: Mapping[str, JSON]  # query parameters by name, `$ref`s followed
    headers: frozenset[str]  # the header parameters the spec declares required

    def response_schema(self, status: int) -> JSON:
        response = _resolve(document()["paths"][self.path][self.method]["responses"][str(status)])
        schema: JSON = response["content"]["application/json"]["schema"]
        return schema


@cache
def operation(method: str, path: str) -> Operation:
    declared = document()["paths"][path][method.lower()]["parameters"]
    resolved = [_resolve(p) for p in declared]
    return Operation(
        path=path,
        method=method.lower(),
        parameters={p["name"]: p for p in resolved if p["in"] == "query"},
        headers=frozenset(p["name"] for p in resolved if p["in"] == "header" and p["required"]),
    )


def check_query(op: Operation, query: Sequence[tuple[str, str]]) -> list[str]:
    """What is wrong with a query string, in words; empty when PagerDuty would take it.

    Stricter than PagerDuty on one point: a parameter the operation does not declare is refused.
    PagerDuty ignores it, so a filter misspelt (`schedule_ids` for `schedule_ids[]`) silently
    widens the answer; refusing it catches that in tests.
    """
    problems: list[str] = []
    seen: dict[str, int] = {}
    for name, value in query:
        seen[name] = seen.get(name, 0) + 1
        declared = op.parameters.get(name)
        if declared is None:
            problems.append(f"{name} is not a parameter of {op.method.upper()} {op.path}")
            continue
        if seen[name] > 1 and not name.endswith("[]"):
            problems.append(f"{name} may be given once")
        schema = declared.get("schema") or {}
        if schema.get("type") == "array":
            schema = schema.get("items") or {}
        problem = _check_value(value, schema)
        if problem:
            problems.append(f"{name} {problem}")
    return problems


def _check_value(value: str, schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {', '.join(schema['enum'])}"
    if kind == "integer":
        return None if value.lstrip("-").isdigit() else "must be an integer"
    if kind == "boolean":
        return None if value in ("true", "false") else "must be true or false"
    if schema.get("format") == "date-time":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "must be an ISO 8601 date-time"
        return None if moment.tzinfo is not None else "must carry a time zone"
    return None


def conforms(schema: Mapping[str, Any], body: Any) -> list[str]:
    """Every way `body` breaks `schema` (resolved against the spec's components)."""
    root = {**schema, "components": document()["components"]}
    validator = jsonschema.Draft7Validator(root)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]


def user_schema() -> JSON:
    """A full User object: what an on-call entry's `user` is under `include[]=users`."""
    return {"$ref": "#/components/schemas/User"}


def oncall_with_users_schema() -> JSON:
    """`GET /oncalls` with `include[]=users`: PagerDuty then returns each entry's user as the
    full User object instead of a reference (the spec describes the reference only)."""
    entry = dict(_resolve({"$ref": "#/components/schemas/Oncall"}))
    entry["properties"] = {**entry["properties"], "user": user_schema()}
    return {
        "allOf": [
            {"$ref": "#/components/schemas/Pagination"},
            {
                "type": "object",
                "properties": {"oncalls": {"type": "array", "items": entry}},
                "required": ["oncalls"],
            },
        ]
    }
