"""Read policy YAML, validate it in two passes and return the domain's AccessPolicy."""

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.domain.rules import AccessPolicy
from bot.policy.build import to_domain
from bot.policy.checks import cross_checks
from bot.policy.messages import explain_error, keys
from bot.policy.models import PolicyDocument
from bot.policy.problems import Loc, PolicyError, PolicyProblem, document_order, dotted, kind

FILE_NOT_FOUND = (
    "file not found; start from the example (cp deploy/policy.example.yaml policy.yaml) "
    "or point GATEHOUSE_POLICY at your policy"
)


def load_policy(path: str | Path) -> AccessPolicy:
    """Read and validate a policy file; raise PolicyError listing every problem."""
    return parse_policy(read_text(path, not_found=FILE_NOT_FOUND), str(path))


def read_text(path: str | Path, *, not_found: str = "file not found") -> str:
    """A UTF-8 file's text; PolicyError (naming the file) when it cannot be read."""
    source = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError([PolicyProblem(source, not_found)]) from None
    except UnicodeDecodeError:
        raise PolicyError([PolicyProblem(source, "the file is not UTF-8 text")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PolicyError([PolicyProblem(source, f"cannot read the file: {reason}")]) from None


def parse_policy(text: str, source: str = "policy.yaml") -> AccessPolicy:
    """Validate policy YAML text; `source` names the file in document-level problems."""
    raw = read_yaml(text, source)
    if not isinstance(raw, dict):
        message = (
            f"the top level must be a mapping with the keys {keys(PolicyDocument)}; "
            f"this file is {kind(raw)}"
        )
        raise PolicyError([PolicyProblem(source, message)])
    found: list[tuple[Loc, str]] = []
    document: PolicyDocument | None = None
    try:
        document = PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        found.extend(explain_error(detail) for detail in exc.errors(include_url=False))
    found.extend(cross_checks(raw))
    if found or document is None:
        found.sort(key=lambda item: document_order(raw, item[0]))
        raise PolicyError(PolicyProblem(dotted(loc), message) for loc, message in found)
    return to_domain(document)


def check_policy(path: str | Path) -> list[PolicyProblem]:
    """Every problem in the policy file; empty when it is valid."""
    try:
        load_policy(path)
    except PolicyError as exc:
        return exc.problems
    return []


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key repeated in one mapping instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str, source: str) -> object:
    """YAML that refuses duplicate keys; PolicyError with the line and column when invalid."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        reason = exc.problem or exc.context or "unreadable"
        raise PolicyError([PolicyProblem(where, f"not valid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([PolicyProblem(source, f"not valid YAML: {exc}")]) from None
