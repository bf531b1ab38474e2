"""PolicyProblem and PolicyError, plus helpers that say where a problem is and what was found."""

from collections.abc import Iterable
from dataclasses import dataclass

Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file: where (`resources.x.max_ttl`) and what, in words."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PolicyError(Exception):
    """The policy file cannot be used; `problems` lists everything found wrong with it."""

    def __init__(self, problems: Iterable[PolicyProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def got(value: object) -> str:
    """A ` (got ...)` suffix naming the offending value, or nothing for complex values."""
    if isinstance(value, dict):
        return " (got a mapping)"
    if isinstance(value, list):
        return " (got a list)"
    if value is None:
        return " (got nothing)"
    if isinstance(value, str | int | float | bool):
        return f" (got {value!r})"
    return ""


def kind(value: object) -> str:
    """What sort of YAML value this is, in words (`empty`, `a list`, ...)."""
    if value is None:
        return "empty"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a plain string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return f"a {type(value).__name__}"


def dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def document_order(raw: object, loc: Loc) -> tuple[int, ...]:
    """Sort key placing a problem where its key sits in the file (missing keys go last)."""
    order: list[int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            order.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            order.append(part)
            node = node[part]
        else:
            order.append(len(node) if isinstance(node, dict | list) else 0)
            break
    return tuple(order)
