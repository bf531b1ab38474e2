"""ACL policies: a small HCL reader and Vault's path matching (exact, `*` glob, `+` segment)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .common import bad_request

CAPABILITIES = ("create", "read", "update", "delete", "list", "sudo", "deny", "patch", "subscribe")
_LEGACY_POLICY = {
    "deny": ["deny"],
    "read": ["read", "list"],
    "write": ["create", "read", "update", "delete", "list"],
    "sudo": ["create", "read", "update", "delete", "list", "sudo"],
}

DEFAULT_POLICY = """
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow checking the status of a Control Group request if the user has the accessor
path "sys/control-group/request" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"""

RESPONSE_WRAPPING_POLICY = """
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"""

_TOKEN = re.compile(
    r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|"(?:[^"\\]|\\.)*"|<<-?(\w+)\n.*?\n\s*\1|[{}\[\]=,]'
    r"|[A-Za-z_][\w.-]*|-?\d+(?:\.\d+)?",
    re.DOTALL,
)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            line = text.count("\n", 0, position) + 1
            raise ValueError(f"At {line}:1: illegal char")
        piece = match.group(0)
        position = match.end()
        if piece.isspace() or piece.startswith(("#", "//", "/*")):
            continue
        tokens.append(piece)
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'a token'}, got {token!r}")
        self.index += 1
        return token

    def body(self, closing: str | None) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        while self.peek() != closing:
            key = _scalar(self.take())
            if not isinstance(key, str):
                raise ValueError(f"unexpected {key!r}")
            labels: list[str] = []
            while self.peek() not in ("=", "{"):
                label = _scalar(self.take())
                labels.append(str(label))
            if self.take() == "=":
                value = self.value()
            else:
                value = dict(self.body("}"))
                self.take("}")
            for label in reversed(labels):
                value = {label: value}
            items.append((key, value))
            if self.peek() == ",":
                self.take()
        return items

    def value(self) -> Any:
        token = self.take()
        if token == "[":
            values: list[Any] = []
            while self.peek() != "]":
                values.append(self.value())
                if self.peek() == ",":
                    self.take()
            self.take("]")
            return values
        if token == "{":
            value = dict(self.body("}"))
            self.take("}")
            return value
        return _scalar(token)


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if token.startswith("<<"):
        return token.split("\n", 1)[1].rsplit("\n", 1)[0]
    if token in ("true", "false"):
        return token == "true"
    if re.fullmatch(r"-?\d+(?:\.\d+)?", token):
        return float(token) if "." in token else int(token)
    if token in "{}[]=,":
        raise ValueError(f"unexpected {token!r}")
    return token


@dataclass(frozen=True)
class PathRule:
    pattern: str
    capabilities: frozenset[str]

    @property
    def is_glob(self) -> bool:
        return self.pattern.endswith("*")

    @property
    def has_segment_wildcard(self) -> bool:
        return "+" in self.pattern.split("/")

    def matches(self, path: str) -> bool:
        pattern = self.pattern[:-1] if self.is_glob else self.pattern
        if not self.has_segment_wildcard:
            return path.startswith(pattern) if self.is_glob else path == pattern
        pattern_parts = pattern.split("/")
        path_parts = path.split("/")
        if len(path_parts) < len(pattern_parts):
            return False
        if not self.is_glob and len(path_parts) != len(pattern_parts):
            return False
        for index, part in enumerate(pattern_parts):
            candidate = path_parts[index]
            last = index == len(pattern_parts) - 1
            if part == "+":
                continue
            if last and self.is_glob:
                if not candidate.startswith(part):
                    return False
                continue
            if candidate != part:
                return False
        return True


@dataclass
class Policy:
    name: str
    text: str
    rules: list[PathRule] = field(default_factory=list)


def parse_policy(name: str, text: str) -> Policy:
    """Parse HCL or JSON policy text; errors read like Vault's `failed to parse policy: ...`."""
    try:
        stripped = text.strip()
        if stripped.startswith("{"):
            document: dict[str, Any] = json.loads(stripped)
            items = list(document.items())
        else:
            items = _Parser(_tokenize(text)).body(None)
    except (ValueError, json.JSONDecodeError) as error:
        raise bad_request(f"failed to parse policy: {error}") from None
    rules: list[PathRule] = []
    for key, value in items:
        if key not in ("path", "name"):
            raise bad_request(f'failed to parse policy: invalid key "{key}" on line 1')
        if key != "path" or not isinstance(value, dict):
            continue
        for pattern, block in value.items():
            rules.append(_rule(pattern, block))
    return Policy(name=name, text=text, rules=rules)


def _rule(pattern: str, block: object) -> PathRule:
    if not isinstance(block, dict):
        raise bad_request(f'failed to parse policy: path "{pattern}": invalid block')
    capabilities: set[str] = set()
    legacy = block.get("policy")
    if legacy is not None:
        if legacy not in _LEGACY_POLICY:
            raise bad_request(
                f'failed to parse policy: path "{pattern}": invalid policy "{legacy}"'
            )
        capabilities.update(_LEGACY_POLICY[str(legacy)])
    for capability in block.get("capabilities", []) or []:
        if capability not in CAPABILITIES:
            raise bad_request(
                f'failed to parse policy: path "{pattern}": invalid capability "{capability}"'
            )
        capabilities.add(capability)
    if "deny" in capabilities:
        capabilities = {"deny"}
    return PathRule(pattern=pattern.lstrip("/"), capabilities=frozenset(capabilities))


def _priority(rule: PathRule) -> tuple[int, int, int, int, str]:
    """Vault's "most specific wins" order: a larger tuple is the higher priority."""
    pattern = rule.pattern
    first_wild = min((i for i, c in enumerate(pattern) if c in "+*"), default=len(pattern))
    return (
        first_wild,
        0 if rule.is_glob else 1,
        -pattern.split("/").count("+"),
        len(pattern),
        pattern,
    )


class ACL:
    """The merged rules of a token's policies."""

    def __init__(self, policies: list[Policy], *, root: bool = False) -> None:
        self.root = root
        merged: dict[str, set[str]] = {}
        for policy in policies:
            for rule in policy.rules:
                merged.setdefault(rule.pattern, set()).update(rule.capabilities)
        self.rules = [
            PathRule(pattern, frozenset({"deny"} if "deny" in caps else caps))
            for pattern, caps in merged.items()
        ]

    def capabilities(self, path: str) -> list[str]:
        """Sorted capabilities on `path`, `["root"]` for root and `["deny"]` for none."""
        if self.root:
            return ["root"]
        exact = [rule for rule in self.rules if rule.pattern == path and not rule.is_glob]
        candidates = exact or [rule for rule in self.rules if rule.matches(path)]
        if not candidates:
            return ["deny"]
        best = max(candidates, key=_priority)
        if not best.capabilities or "deny" in best.capabilities:
            return ["deny"]
        return sorted(best.capabilities)

    def allows(self, path: str, capability: str, *, sudo: bool = False) -> bool:
        if self.root:
            return True
        granted = self.capabilities(path)
        if capability not in granted:
            return False
        return not sudo or "sudo" in granted


class PolicyStore:
    def __init__(self) -> None:
        self.policies: dict[str, Policy] = {
            "default": parse_policy("default", DEFAULT_POLICY),
            "response-wrapping": parse_policy("response-wrapping", RESPONSE_WRAPPING_POLICY),
        }

    def names(self) -> list[str]:
        return sorted([*(n for n in self.policies if n != "response-wrapping"), "root"])

    def put(self, name: str, text: str) -> None:
        name = name.strip().lower()
        if name == "root":
            raise bad_request('cannot update "root" policy')
        if name == "response-wrapping":
            raise bad_request('cannot update "response-wrapping" policy')
        self.policies[name] = parse_policy(name, text)

    def get(self, name: str) -> Policy | None:
        name = name.strip().lower()
        if name == "root":
            return None
        return self.policies.get(name) if name != "response-wrapping" else None

    def delete(self, name: str) -> None:
        name = name.strip().lower()
        if name in ("root", "default", "response-wrapping"):
            raise bad_request(f'cannot delete "{name}" policy')
        self.policies.pop(name, None)

    def acl(self, names: list[str]) -> ACL:
        if "root" in names:
            return ACL([], root=True)
        return ACL([self.policies[n] for n in names if n in self.policies])
