"""Token roles: what tokens created through `auth/token/create/<role>` may be."""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import (
    JSON,
    as_bool,
    as_int,
    as_str_list,
    bad_request,
    parse_duration,
    sanitize_policies,
)


@dataclass
class TokenRole:
    name: str
    allowed_policies: list[str] = field(default_factory=list)
    disallowed_policies: list[str] = field(default_factory=list)
    allowed_policies_glob: list[str] = field(default_factory=list)
    disallowed_policies_glob: list[str] = field(default_factory=list)
    orphan: bool = False
    renewable: bool = True
    explicit_max_ttl: int = 0
    period: int = 0
    path_suffix: str = ""
    token_type: str = "default-service"
    no_default_policy: bool = False
    num_uses: int = 0
    allowed_entity_aliases: list[str] | None = None

    def update(self, body: JSON) -> None:
        for key in ("allowed_policies", "disallowed_policies"):
            if key in body:
                setattr(self, key, sanitize_policies(as_str_list(body[key]), False))
        for key in ("allowed_policies_glob", "disallowed_policies_glob"):
            if key in body:
                setattr(self, key, as_str_list(body[key]))
        if "allowed_entity_aliases" in body:
            self.allowed_entity_aliases = as_str_list(body["allowed_entity_aliases"]) or None
        self.orphan = as_bool(body.get("orphan"), self.orphan)
        self.renewable = as_bool(body.get("renewable"), self.renewable)
        for new, old, attr in (
            ("token_explicit_max_ttl", "explicit_max_ttl", "explicit_max_ttl"),
            ("token_period", "period", "period"),
        ):
            if body.get(new) is not None:
                setattr(self, attr, parse_duration(body[new], new))
            elif body.get(old) is not None:
                setattr(self, attr, parse_duration(body[old], old))
        if "path_suffix" in body:
            suffix = str(body["path_suffix"] or "")
            if ".." in suffix:
                raise bad_request("error registering path suffix: path suffix cannot contain '..'")
            self.path_suffix = suffix
        if body.get("token_type"):
            token_type = str(body["token_type"])
            if token_type not in ("service", "default-service", "batch", "default-batch"):
                raise bad_request(f'invalid "token_type" value "{token_type}"')
            self.token_type = token_type
        self.no_default_policy = as_bool(
            body.get("token_no_default_policy"), self.no_default_policy
        )
        self.num_uses = as_int(body.get("token_num_uses"), self.num_uses)

    def read_data(self) -> JSON:
        return {
            "name": self.name,
            "allowed_policies": self.allowed_policies,
            "disallowed_policies": self.disallowed_policies,
            "allowed_policies_glob": self.allowed_policies_glob,
            "disallowed_policies_glob": self.disallowed_policies_glob,
            "allowed_entity_aliases": self.allowed_entity_aliases,
            "orphan": self.orphan,
            "renewable": self.renewable,
            "path_suffix": self.path_suffix,
            "explicit_max_ttl": self.explicit_max_ttl,
            "token_explicit_max_ttl": self.explicit_max_ttl,
            "period": self.period,
            "token_period": self.period,
            "token_type": self.token_type,
            "token_no_default_policy": self.no_default_policy,
            "token_num_uses": self.num_uses,
            "token_bound_cidrs": [],
        }
