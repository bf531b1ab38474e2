"""The PagerDuty contract (`tests/specs/pagerduty/contract.yaml`): the query parameters each
operation takes, the shapes its answers must have, and the pagination limits.

`GATEHOUSE_PAGERDUTY_CONTRACT` points at another copy. The file is loaded when the emulator
starts: missing or unreadable, the emulator refuses to start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.specs import SPECS, SpecFilesMissing, shown

JSON = dict[str, Any]


def contract_path() -> Path:
    override = os.environ.get("GATEHOUSE_PAGERDUTY_CONTRACT")
    if override:
        return Path(override)
    return SPECS / "pagerduty" / "contract.yaml"


def load() -> JSON:
    """The contract, or SpecFilesMissing saying in one line what is wrong with it."""
    return _load(contract_path())


@cache
def _load(path: Path) -> JSON:
    where = shown(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecFilesMissing(
            f"pagerduty emulator: contract file missing at {where}; restore it with "
            "`git checkout -- tests/specs/pagerduty` or set GATEHOUSE_PAGERDUTY_CONTRACT"
        ) from None
    except (OSError, ValueError, yaml.YAMLError) as error:
        problem = " ".join(str(error).split())
        raise SpecFilesMissing(f"pagerduty emulator: cannot read {where}: {problem}") from None
    if not isinstance(document, dict) or not {"operations", "shapes", "pagination"} <= set(
        document
    ):
        raise SpecFilesMissing(
            f"pagerduty emulator: {where} lacks operations, shapes or pagination"
        )
    for name, shape in document["shapes"].items():
        try:
            jsonschema.Draft7Validator.check_schema(shape)
        except jsonschema.SchemaError as error:
            raise SpecFilesMissing(
                f"pagerduty emulator: the shape {name} in {where} is not JSON Schema: "
                f"{error.message}"
            ) from None
    loaded: JSON = document
    return loaded


def page_limits() -> tuple[int, int]:
    """(default, maximum) items per page."""
    pagination = load()["pagination"]
    return int(pagination["default_limit"]), int(pagination["max_limit"])


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    parameters: Mapping[str, JSON]  # query parameter name -> {kind, repeatable, one_of}
    answers: Mapping[int, JSON]  # HTTP status -> the shape of the answer's body
    answer_with_users: JSON | None  # /oncalls with include[]=users

    def response_schema(self, status: int) -> JSON:
        return dict(self.answers[status])


def operation(method: str, path: str) -> Operation:
    declared = load()["operations"][f"{method.upper()} {path}"]
    return Operation(
        path=path,
        method=method.lower(),
        parameters={name: rule or {} for name, rule in declared["parameters"].items()},
        answers={int(status): shape for status, shape in declared["answers"].items()},
        answer_with_users=declared.get("answer_with_users"),
    )


def check_query(op: Operation, query: Sequence[tuple[str, str]]) -> list[str]:
    """What is wrong with a query string, in words; empty when PagerDuty would take it.

    Stricter than PagerDuty on one point: a parameter the operation does not take is refused.
    PagerDuty ignores it, so a filter misspelt (`schedule_ids` for `schedule_ids[]`) silently
    widens the answer; refusing it catches that in tests.
    """
    problems: list[str] = []
    seen: dict[str, int] = {}
    for name, value in query:
        seen[name] = seen.get(name, 0) + 1
        rule = op.parameters.get(name)
        if rule is None:
            problems.append(f"{name} is not a parameter of {op.method.upper()} {op.path}")
            continue
        if seen[name] > 1 and not rule.get("repeatable"):
            problems.append(f"{name} may be given once")
        problem = _check_value(value, rule)
        if problem:
            problems.append(f"{name} {problem}")
    return problems


def _check_value(value: str, rule: Mapping[str, Any]) -> str | None:
    kind = rule.get("kind", "text")
    if "one_of" in rule and value not in rule["one_of"]:
        return f"must be one of {', '.join(rule['one_of'])}"
    if kind == "integer":
        return None if value.lstrip("-").isdigit() else "must be an integer"
    if kind == "boolean":
        return None if value in ("true", "false") else "must be true or false"
    if kind == "date-time":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "must be an ISO 8601 date-time"
        return None if moment.tzinfo is not None else "must carry a time zone"
    return None


def conforms(schema: Mapping[str, Any], body: Any) -> list[str]:
    """Every way `body` breaks `schema` (its `$ref`s point into the contract's shapes)."""
    root = {**schema, "shapes": load()["shapes"]}
    validator = jsonschema.Draft7Validator(root)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]


def oncall_with_users_schema() -> JSON:
    """`GET /oncalls` with `include[]=users`: each entry's user is the full user object."""
    shape = operation("GET", "/oncalls").answer_with_users
    if shape is None:
        raise SpecFilesMissing(
            f"pagerduty emulator: {shown(contract_path())} lacks the /oncalls answer_with_users"
        )
    return dict(shape)
