"""The token store: service tokens, accessors, the parent/child tree, token roles and TTLs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .common import (
    JSON,
    SYSTEM_DEFAULT_TTL,
    SYSTEM_MAX_TTL,
    as_bool,
    as_int,
    as_str_list,
    bad_request,
    go_duration,
    new_accessor,
    new_token_id,
    parse_duration,
    rfc3339_nano,
    sanitize_policies,
)
from .token_roles import TokenRole

_DISPLAY_NAME_SANITIZE = re.compile(r"[^a-zA-Z0-9-]+")


@dataclass
class Token:
    id: str
    accessor: str
    policies: list[str]
    parent: str | None
    path: str
    display_name: str
    creation_time: float
    ttl: int  # the TTL at creation; 0 = never expires
    expire_time: float | None
    meta: dict[str, str] | None = None
    explicit_max_ttl: int = 0
    period: int = 0
    renewable: bool = True
    num_uses: int = 0
    role: str | None = None
    max_ttl: int = 0  # the auth backend's max TTL for renewals; 0 = system max
    entity_id: str = ""
    last_renewal: float | None = None
    children: set[str] = field(default_factory=set)
    wrapped_response: bytes | None = None  # set on response-wrapping tokens
    wrap_creation_path: str = ""

    @property
    def orphan(self) -> bool:
        return self.parent is None

    def remaining(self, now: float) -> int:
        if self.expire_time is None:
            return 0
        return max(0, round(self.expire_time - now))

    def auth_block(self, now: float) -> JSON:
        policies = list(self.policies)
        return {
            "client_token": self.id,
            "accessor": self.accessor,
            "policies": policies,
            "token_policies": policies,
            "metadata": self.meta,
            "lease_duration": self.remaining(now),
            "renewable": self.renewable and self.expire_time is not None,
            "entity_id": self.entity_id,
            "token_type": "service",
            "orphan": self.orphan,
            "mfa_requirement": None,
            "num_uses": self.num_uses,
        }

    def lookup_data(self, now: float, *, hide_id: bool = False) -> JSON:
        data: JSON = {
            "accessor": self.accessor,
            "creation_time": int(self.creation_time),
            "creation_ttl": self.ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": rfc3339_nano(self.expire_time) if self.expire_time else None,
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": "" if hide_id else self.id,
            "issue_time": rfc3339_nano(self.creation_time),
            "meta": self.meta,
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "policies": list(self.policies),
            "renewable": self.renewable and self.expire_time is not None,
            "ttl": self.remaining(now),
            "type": "service",
        }
        if self.role:
            data["role"] = self.role
        if self.period:
            data["period"] = self.period
        if self.last_renewal is not None:
            data["last_renewal_time"] = int(self.last_renewal)
            data["last_renewal"] = rfc3339_nano(self.last_renewal)
        return data


@dataclass
class CreateOptions:
    """How a caller may create a token: what it holds, and whether it has root or sudo."""

    parent: Token
    privileged: bool  # root or sudo on the request path
    path: str
    role: TokenRole | None = None
    force_orphan: bool = False


def _quote_list(values: list[str]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


class TokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.by_accessor: dict[str, str] = {}
        self.roles: dict[str, TokenRole] = {}

    def add(self, token: Token) -> Token:
        self.tokens[token.id] = token
        self.by_accessor[token.accessor] = token.id
        if token.parent and token.parent in self.tokens:
            self.tokens[token.parent].children.add(token.id)
        return token

    def new_token(self, now: float, **fields: Any) -> Token:
        ttl = int(fields.pop("ttl", 0))
        token_id = fields.pop("id", None) or new_token_id()
        expire = now + ttl if ttl else None
        token = Token(
            id=token_id,
            accessor=new_accessor(),
            creation_time=now,
            ttl=ttl,
            expire_time=expire,
            **fields,
        )
        return self.add(token)

    def find_by_accessor(self, accessor: str) -> Token | None:
        token_id = self.by_accessor.get(accessor)
        return self.tokens.get(token_id) if token_id else None

    def subtree(self, token: Token) -> list[Token]:
        """The token and all its non-orphan descendants, children first."""
        ordered: list[Token] = []

        def visit(current: Token) -> None:
            for child_id in sorted(current.children):
                child = self.tokens.get(child_id)
                if child is not None and child.parent == current.id:
                    visit(child)
            ordered.append(current)

        visit(token)
        return ordered

    def remove(self, token: Token) -> None:
        self.tokens.pop(token.id, None)
        self.by_accessor.pop(token.accessor, None)
        if token.parent and token.parent in self.tokens:
            self.tokens[token.parent].children.discard(token.id)

    def expired(self, now: float) -> list[Token]:
        return [
            t for t in self.tokens.values() if t.expire_time is not None and t.expire_time <= now
        ]

    # -- creation -------------------------------------------------------------------------

    def create(self, body: JSON, options: CreateOptions, now: float) -> tuple[Token, list[str]]:
        warnings: list[str] = []
        parent, role = options.parent, options.role
        parent_is_root = "root" in parent.policies
        if body.get("id") and not options.privileged:
            raise bad_request("root or sudo privileges required to specify token id")
        if body.get("type") not in (None, "", "service"):
            raise bad_request("the emulator issues service tokens only")
        num_uses = as_int(body.get("num_uses"), 0)
        if num_uses < 0:
            raise bad_request("number of uses cannot be negative")
        orphan = options.force_orphan or (role is not None and role.orphan)
        if as_bool(body.get("no_parent"), False):
            if not options.privileged:
                raise bad_request("root or sudo privileges required to create orphan token")
            orphan = True
        no_default = as_bool(body.get("no_default_policy"), False)
        requested = sanitize_policies(as_str_list(body.get("policies")), False)
        if role is not None:
            policies = self._role_policies(role, requested, parent, options.privileged, no_default)
        else:
            if not requested:
                requested = [p for p in parent.policies if not (no_default and p == "default")]
            if not options.privileged and not set(requested) <= set(parent.policies):
                raise bad_request("child policies must be subset of parent")
            policies = sanitize_policies(requested, not no_default)
        if "root" in policies and not parent_is_root:
            raise bad_request("root tokens may not be created without parent token being root")
        if role is not None and role.num_uses and (num_uses == 0 or role.num_uses < num_uses):
            num_uses = role.num_uses
        ttl = parse_duration(body.get("ttl") or body.get("lease"), "ttl")
        explicit = parse_duration(body.get("explicit_max_ttl"), "explicit_max_ttl")
        period = parse_duration(body.get("period"), "period")
        if period and not options.privileged and role is None:
            raise bad_request("root or sudo privileges required to create periodic token")
        if role is not None:
            if role.period:
                period = role.period
            if role.explicit_max_ttl:
                if explicit and explicit > role.explicit_max_ttl:
                    warnings.append(
                        "Explicit max TTL specified both during creation call and in role; "
                        "using the lesser value"
                    )
                explicit = (
                    min(explicit, role.explicit_max_ttl) if explicit else role.explicit_max_ttl
                )
        if explicit:
            if explicit > SYSTEM_MAX_TTL and not period:
                warnings.append(
                    f"Explicit max TTL of {explicit} seconds is greater than system/mount allowed "
                    f"value; value is being capped to {SYSTEM_MAX_TTL} seconds"
                )
                explicit = SYSTEM_MAX_TTL
            if ttl == 0:
                ttl = explicit
            elif ttl > explicit:
                warnings.append(
                    f"Requested TTL of {ttl} seconds higher than explicit max TTL; "
                    f"value being capped to {explicit} seconds"
                )
                ttl = explicit
        if period:
            ttl = min(period, explicit) if explicit else period
        is_root = policies == ["root"]
        if ttl == 0 and not is_root:
            ttl = SYSTEM_DEFAULT_TTL
        if ttl > SYSTEM_MAX_TTL and not period:
            ttl = SYSTEM_MAX_TTL
        renewable = as_bool(body.get("renewable"), True)
        if role is not None and not role.renewable:
            renewable = False
        if is_root and ttl == 0:
            renewable = False
        display = "token"
        if body.get("display_name"):
            display = _DISPLAY_NAME_SANITIZE.sub("-", "token-" + str(body["display_name"]))
            display = display.rstrip("-")
        meta = {str(k): str(v) for k, v in _kv(body.get("meta")).items()} or None
        path = options.path
        if role is not None and role.path_suffix:
            path = f"{path}/{role.path_suffix}"
        token = self.new_token(
            now,
            id=str(body.get("id") or "") or None,
            policies=policies,
            parent=None if orphan else parent.id,
            path=path,
            display_name=display,
            ttl=ttl,
            meta=meta,
            explicit_max_ttl=explicit,
            period=period,
            renewable=renewable,
            num_uses=num_uses,
            role=role.name if role else None,
        )
        return token, warnings

    @staticmethod
    def _role_policies(
        role: TokenRole, requested: list[str], parent: Token, privileged: bool, no_default: bool
    ) -> list[str]:
        add_default = not no_default and not role.no_default_policy
        if "default" in role.disallowed_policies:
            add_default = False
        if role.allowed_policies:
            allowed = set(role.allowed_policies) | {"default"}
            if not requested:
                requested = list(role.allowed_policies)
            elif not set(requested) <= allowed:
                raise bad_request(
                    f"token policies ({_quote_list(requested)}) must be subset of the role's "
                    f"allowed policies ({_quote_list(role.allowed_policies)})"
                )
        else:
            if not requested:
                requested = [p for p in parent.policies if p not in role.disallowed_policies]
            if not privileged and not set(requested) <= set(parent.policies):
                raise bad_request(
                    f"token policies ({_quote_list(requested)}) must be subset of the parent "
                    f"token's policies ({_quote_list(parent.policies)})"
                )
        for policy in requested:
            if policy in role.disallowed_policies:
                raise bad_request(f'token policy "{policy}" is disallowed by this role')
        return sanitize_policies(requested, add_default)

    # -- renewal --------------------------------------------------------------------------

    def renew(self, token: Token, increment: int, now: float) -> list[str]:
        """Extend a token as ExpirationManager.RenewToken does; returns warnings."""
        if not token.renewable or token.expire_time is None:
            raise bad_request("lease is not renewable")
        warnings: list[str] = []
        if token.period:
            ttl = token.period
            if token.explicit_max_ttl:
                left = token.creation_time + token.explicit_max_ttl - now
                ttl = min(ttl, max(0, int(left)))
        else:
            ttl, warnings = calculate_ttl(
                increment=increment,
                backend_ttl=token.ttl,
                backend_max=token.max_ttl,
                explicit_max=token.explicit_max_ttl,
                start=token.creation_time,
                now=now,
            )
        token.expire_time = now + ttl
        token.last_renewal = now
        return warnings


def calculate_ttl(
    *,
    increment: int,
    backend_ttl: int,
    backend_max: int,
    explicit_max: int,
    start: float,
    now: float,
) -> tuple[int, list[str]]:
    """sdk/framework CalculateTTL: the TTL to grant on renewal, capped by the effective max."""
    ttl = increment or backend_ttl or SYSTEM_DEFAULT_TTL
    max_ttl = SYSTEM_MAX_TTL
    if 0 < backend_max < max_ttl:
        max_ttl = backend_max
    if 0 < explicit_max < max_ttl:
        max_ttl = explicit_max
    max_valid = start + max_ttl - now
    if max_valid <= 0:
        raise bad_request("past the max TTL, cannot renew")
    warnings: list[str] = []
    if max_valid - ttl < 0:
        warnings.append(
            f'TTL of "{go_duration(ttl)}" exceeded the effective max_ttl of '
            f'"{go_duration(max_valid)}"; TTL value is capped accordingly'
        )
        ttl = round(max_valid)
    return ttl, warnings


def _kv(value: object) -> dict[str, object]:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        pairs = (str(item).split("=", 1) for item in value)
        return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}
    return {}
