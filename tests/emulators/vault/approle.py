"""The AppRole auth method: roles, role IDs, secret IDs and login."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .common import (
    JSON,
    Reply,
    Request,
    VaultError,
    as_bool,
    as_int,
    bad_request,
    login_from,
    new_uuid,
    not_found,
    parse_duration,
    read_or_delete,
    rfc3339_nano,
    token_params,
    token_params_read,
)

INVALID_CREDENTIALS = "invalid role or secret ID"


@dataclass
class SecretID:
    secret_id: str
    accessor: str
    creation_time: float
    ttl: int
    num_uses: int
    metadata: dict[str, str]

    def expired(self, now: float) -> bool:
        return bool(self.ttl) and self.creation_time + self.ttl <= now


@dataclass
class AppRole:
    name: str
    role_id: str
    params: dict[str, Any]
    bind_secret_id: bool = True
    secret_id_ttl: int = 0
    secret_id_num_uses: int = 0
    secret_ids: dict[str, SecretID] = field(default_factory=dict)

    def read_data(self) -> JSON:
        return {
            **token_params_read(self.params),
            "bind_secret_id": self.bind_secret_id,
            "secret_id_ttl": self.secret_id_ttl,
            "secret_id_num_uses": self.secret_id_num_uses,
            "secret_id_bound_cidrs": None,
            "local_secret_ids": False,
        }


class AppRoleBackend:
    type_name = "approle"

    def __init__(self) -> None:
        self.roles: dict[str, AppRole] = {}

    def exists(self, subpath: str) -> bool | None:
        parts = subpath.split("/")
        if len(parts) == 2 and parts[0] == "role":
            return parts[1] in self.roles
        return None

    def unauthenticated(self, subpath: str) -> bool:
        return subpath == "login"

    def handle(self, req: Request) -> Reply:
        parts = req.subpath.split("/")
        if parts == ["login"]:
            if req.operation not in ("create", "update"):
                raise VaultError(405, "unsupported operation")
            return self._login(req)
        if parts[0] == "role" and (len(parts) == 1 or parts[1] == "" or req.operation == "list"):
            if req.operation != "list" or len(parts) > 2:
                raise VaultError(405, "unsupported operation")
            if not self.roles:
                raise not_found()
            return Reply(data={"keys": sorted(self.roles)})
        if parts[0] != "role" or len(parts) < 2:
            raise VaultError(404, "unsupported path")
        name = parts[1].lower()
        if len(parts) == 2:
            return self._role(req, name)
        role = self.roles.get(name)
        leaf = "/".join(parts[2:])
        if role is None:
            if req.operation == "read":
                raise not_found()
            raise bad_request(f'role "{name}" does not exist')
        if leaf == "role-id":
            if req.operation == "read":
                return Reply(data={"role_id": role.role_id})
            role_id = str(req.body.get("role_id") or "")
            if not role_id:
                raise bad_request("missing role_id")
            role.role_id = role_id
            return Reply(status=204)
        if leaf == "secret-id":
            if req.operation not in ("create", "update"):
                raise VaultError(405, "unsupported operation")
            return self._new_secret_id(req, role)
        if leaf == "custom-secret-id":
            if req.operation not in ("create", "update"):
                raise VaultError(405, "unsupported operation")
            chosen = str(req.body.get("secret_id") or "")
            if not chosen:
                raise bad_request("missing secret_id")
            if chosen in role.secret_ids:  # registerSecretIDEntry: a plain error, so a 500
                raise VaultError(500, "SecretID is already registered")
            return self._new_secret_id(req, role, chosen)
        raise VaultError(404, "unsupported path")

    def _role(self, req: Request, name: str) -> Reply:
        done = read_or_delete(req, self.roles, name)
        if done is not None:
            return done
        body = req.body
        existing = self.roles.get(name)
        role = existing or AppRole(name=name, role_id=new_uuid(), params=token_params({}))
        role.params = token_params(body, role.params)
        role.bind_secret_id = as_bool(body.get("bind_secret_id"), role.bind_secret_id)
        if body.get("secret_id_ttl") is not None:
            role.secret_id_ttl = parse_duration(body["secret_id_ttl"], "secret_id_ttl")
        role.secret_id_num_uses = as_int(body.get("secret_id_num_uses"), role.secret_id_num_uses)
        if body.get("role_id"):
            role.role_id = str(body["role_id"])
        self.roles[name] = role
        return Reply(status=204)

    def _new_secret_id(self, req: Request, role: AppRole, chosen: str | None = None) -> Reply:
        ttl = role.secret_id_ttl
        if req.body.get("ttl") is not None:
            asked = parse_duration(req.body["ttl"], "ttl")
            ttl = min(asked, ttl) if ttl and asked else (asked or ttl)
        secret = SecretID(
            secret_id=chosen or new_uuid(),
            accessor=new_uuid(),
            creation_time=req.now,
            ttl=ttl,
            num_uses=as_int(req.body.get("num_uses"), role.secret_id_num_uses),
            metadata={},
        )
        role.secret_ids[secret.secret_id] = secret
        return Reply(
            data={
                "secret_id": secret.secret_id,
                "secret_id_accessor": secret.accessor,
                "secret_id_ttl": secret.ttl,
                "secret_id_num_uses": secret.num_uses,
            }
        )

    def _login(self, req: Request) -> Reply:
        role_id = str(req.body.get("role_id") or "")
        if not role_id:
            raise bad_request("missing role_id")
        role = next((r for r in self.roles.values() if r.role_id == role_id), None)
        if role is None:
            raise bad_request(INVALID_CREDENTIALS)
        if role.bind_secret_id:
            secret_id = str(req.body.get("secret_id") or "")
            if not secret_id:
                raise bad_request("missing secret_id")
            secret = role.secret_ids.get(secret_id)
            if secret is None or secret.expired(req.now):
                role.secret_ids.pop(secret_id, None)
                raise bad_request(INVALID_CREDENTIALS)
            if secret.num_uses:
                secret.num_uses -= 1
                if secret.num_uses == 0:
                    del role.secret_ids[secret_id]
        login = login_from(
            role.params,
            display_name="approle",
            meta={"role_name": role.name},
            entity_key=f"approle:{role.role_id}",
        )
        return Reply(login=login)

    def expire(self, now: float) -> None:
        for role in self.roles.values():
            for key in [k for k, s in role.secret_ids.items() if s.expired(now)]:
                del role.secret_ids[key]


def secret_id_lookup(secret: SecretID) -> JSON:
    return {
        "secret_id_accessor": secret.accessor,
        "creation_time": rfc3339_nano(secret.creation_time),
        "secret_id_ttl": secret.ttl,
        "secret_id_num_uses": secret.num_uses,
        "metadata": secret.metadata,
    }
