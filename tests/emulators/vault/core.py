"""The Vault core: mounts, authentication, ACL checks, leases, wrapping and the envelope."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .approle import AppRoleBackend
from .common import (
    JSON,
    SYSTEM_DEFAULT_TTL,
    Clock,
    Reply,
    Request,
    VaultError,
    bad_request,
    new_uuid,
    parse_duration,
    rfc3339_nano,
    sanitize_policies,
)
from .database import DatabaseBackend
from .kubernetes import KubernetesBackend
from .leases import Lease, LeaseStore
from .policies import PolicyStore
from .tokens import Token, TokenStore

# Paths that need `sudo` besides the operation's capability (PathsSpecial.Root of each backend).
SUDO_PREFIXES = (
    "sys/auth/", "sys/leases/revoke-prefix/", "sys/leases/revoke-force/", "sys/leases/lookup/",
    "sys/revoke-prefix/", "sys/revoke-force/", "sys/audit", "sys/raw", "sys/rotate",
    "sys/plugins/catalog/", "auth/token/revoke-orphan", "auth/token/accessors",
)  # fmt: skip
SUDO_EXACT = ("sys/leases",)
UNAUTHENTICATED = ("sys/health", "sys/wrapping/lookup", "sys/seal-status", "sys/leader")


class Backend(Protocol):
    type_name: str

    def handle(self, req: Request) -> Reply: ...

    def exists(self, subpath: str) -> bool | None: ...


class UnimplementedBackend:
    """A mount the emulator lists (dev mode's `secret/`, `cubbyhole/`) but does not serve."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def handle(self, req: Request) -> Reply:
        raise VaultError(404, "unsupported path")

    def exists(self, subpath: str) -> bool | None:
        return None


@dataclass(frozen=True)
class Revocation:
    """One revocation: asked for by a caller, or Vault's own doing (TTL, parent revoked)."""

    target: str  # a token accessor or a lease id
    cause: str  # "request", "expired", "used" (num_uses), "parent" (its token or parent went)
    at: float  # wall-clock seconds
    caller: str | None = None  # the accessor of the token that asked, for a "request"
    found: bool = True  # False: asked to revoke something already gone


SECRET_ENGINES: dict[str, type[Any]] = {"database": DatabaseBackend}
AUTH_METHODS: dict[str, type[Any]] = {"approle": AppRoleBackend, "kubernetes": KubernetesBackend}


@dataclass
class Mount:
    path: str  # "database/" or "auth/approle/"
    type: str
    backend: Any
    accessor: str
    description: str = ""
    options: dict[str, str] | None = None
    config: JSON = field(default_factory=dict)

    def entry(self) -> JSON:
        return {
            "type": self.type,
            "description": self.description,
            "accessor": self.accessor,
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False},
            "options": self.options,
            "local": False,
            "seal_wrap": False,
            "external_entropy_access": False,
            "plugin_version": "",
            "running_plugin_version": "v1.15.6+builtin.vault" if self.type != "kv" else "",
            "running_sha256": "",
            "uuid": new_uuid(),
        }


class VaultCore:
    def __init__(self, root_token: str, *, database_detached: bool = False) -> None:
        self.database_detached = database_detached
        self.lock = threading.RLock()
        self.clock = Clock()
        self.tokens = TokenStore()
        self.policies = PolicyStore()
        self.leases = LeaseStore()
        self.revocations: list[Revocation] = []
        self.entities: dict[str, str] = {}
        self.cluster_name = "vault-cluster-" + new_uuid()[:8]
        self.cluster_id = new_uuid()
        self.mounts: dict[str, Mount] = {}
        builtin = (("cubbyhole/", "cubbyhole"), ("identity/", "identity"), ("secret/", "kv"),
                   ("sys/", "system"), ("auth/token/", "token"))  # fmt: skip
        for path, type_name in builtin:
            options = {"version": "2"} if type_name == "kv" else None
            backend = UnimplementedBackend(type_name)
            self.mounts[path] = Mount(path, type_name, backend, self._mount_accessor(type_name),
                                      options=options)  # fmt: skip
        self.root = self.tokens.new_token(
            self.clock.now(), id=root_token, policies=["root"], parent=None,
            path="auth/token/root", display_name="root", ttl=0, renewable=False,
        )  # fmt: skip

    @staticmethod
    def _mount_accessor(type_name: str) -> str:
        kind = "auth" if type_name in ("token", *AUTH_METHODS) else type_name
        return (
            f"{kind}_{type_name}_{new_uuid()[:8]}"
            if kind == "auth"
            else f"{type_name}_{new_uuid()[:8]}"
        )

    # -- mounts ---------------------------------------------------------------------------

    def mount_for(self, path: str) -> Mount | None:
        candidates = [m for m in self.mounts if (path + "/").startswith(m)]
        return self.mounts[max(candidates, key=len)] if candidates else None

    def enable(self, path: str, body: JSON, *, auth: bool) -> None:
        type_name = str(body.get("type") or "")
        if not type_name:
            raise bad_request("backend type must be specified as a string")
        catalog = AUTH_METHODS if auth else SECRET_ENGINES
        if type_name not in catalog:
            raise bad_request(f"plugin not found in the catalog: {type_name}")
        path = path.strip("/") + "/"
        full = ("auth/" + path) if auth else path
        for reserved in ("sys/", "auth/", "cubbyhole/", "identity/"):
            if not auth and full.startswith(reserved):
                raise bad_request(f"cannot mount under {reserved!r}".replace("'", '"'))
        for existing in self.mounts:
            if full.startswith(existing) or existing.startswith(full):
                raise bad_request(f"path is already in use at {existing}")
        backend = (
            DatabaseBackend(detached=self.database_detached)
            if type_name == "database"
            else catalog[type_name]()
        )
        self.mounts[full] = Mount(full, type_name, backend,
                                  self._mount_accessor(type_name),
                                  description=str(body.get("description") or ""))  # fmt: skip

    def disable(self, full: str) -> None:
        mount = self.mounts.get(full)
        if mount is None or full in ("sys/", "auth/token/", "cubbyhole/", "identity/"):
            return
        for lease in self.leases.under(full):
            self.revoke_lease(lease, force=True)
        del self.mounts[full]

    # -- tokens and leases ----------------------------------------------------------------

    def lookup_token(self, token_id: str | None) -> Token | None:
        if not token_id:
            return None
        token = self.tokens.tokens.get(token_id)
        if token is None:
            return None
        if token.expire_time is not None and token.expire_time <= self.clock.now():
            self.revoke_token(token, cause="expired")
            return None
        return token

    def record_revocation(
        self, target: str, cause: str, caller: str | None = None, *, found: bool = True
    ) -> None:
        with self.lock:
            self.revocations.append(Revocation(target, cause, time.time(), caller, found))

    def revoke_token(
        self,
        token: Token,
        *,
        orphan_children: bool = False,
        cause: str = "request",
        caller: str | None = None,
    ) -> None:
        tree = [token] if orphan_children else self.tokens.subtree(token)
        for member in tree:
            if member is token:
                self.record_revocation(member.accessor, cause, caller)
            else:
                self.record_revocation(member.accessor, "parent")
            for lease in self.leases.owned_by(member.id):
                self.revoke_lease(lease, force=False, cause="parent")
            if orphan_children:
                for child_id in member.children:
                    child = self.tokens.tokens.get(child_id)
                    if child is not None:
                        child.parent = None
            self.tokens.remove(member)

    def revoke_lease(
        self, lease: Lease, *, force: bool, cause: str = "request", caller: str | None = None
    ) -> None:
        """Revoke now; on failure the lease stays (already due) and the reaper tries again."""
        mount = self.mounts.get(lease.mount)
        try:
            if mount is not None and hasattr(mount.backend, "revoke_secret"):
                mount.backend.revoke_secret(lease.internal)
        except Exception as error:
            if not force:
                now = self.clock.now()
                lease.expire_time = min(lease.expire_time, now)
                lease.failed_revocations += 1
                lease.next_attempt = now + min(2**lease.failed_revocations, 60)
                raise VaultError(400, f"failed to revoke entry: {error}") from None
        self.leases.remove(lease)
        self.record_revocation(lease.id, cause, caller)

    def issue_login_token(self, reply: Reply, mount: Mount, now: float) -> None:
        login = reply.login
        assert login is not None
        entity = self.entities.setdefault(login.entity_key, new_uuid())
        ttl = login.period or login.ttl
        if login.explicit_max_ttl and (not ttl or ttl > login.explicit_max_ttl):
            ttl = login.explicit_max_ttl
        if login.max_ttl and (not ttl or ttl > login.max_ttl):
            ttl = login.max_ttl
        token = self.tokens.new_token(
            now, policies=sanitize_policies(login.policies, not login.no_default_policy),
            parent=None, path=mount.path + "login", display_name=login.display_name,
            ttl=ttl or SYSTEM_DEFAULT_TTL, meta=login.meta, explicit_max_ttl=login.explicit_max_ttl,
            period=login.period, num_uses=login.num_uses, max_ttl=login.max_ttl,
            entity_id=entity,
        )  # fmt: skip
        reply.auth = token.auth_block(now)
        reply.created_accessor = token.accessor

    def reap(self) -> None:
        """Expire what is due: tokens (with their trees and leases), leases, wrapping tokens."""
        with self.lock:
            now = self.clock.now()
            for token in self.tokens.expired(now):
                if token.id in self.tokens.tokens:
                    self.revoke_token(token, cause="expired")
            for lease in self.leases.due(now):
                try:
                    self.revoke_lease(lease, force=False, cause="expired")
                except VaultError:
                    continue
            for mount in self.mounts.values():
                if isinstance(mount.backend, AppRoleBackend):
                    mount.backend.expire(now)

    # -- wrapping -------------------------------------------------------------------------

    def wrap(self, body: bytes, ttl: int, creation_path: str, wrapped_accessor: str | None) -> JSON:
        now = self.clock.now()
        token = self.tokens.new_token(
            now, policies=["response-wrapping"], parent=None, path=creation_path,
            display_name="", ttl=ttl, explicit_max_ttl=ttl, renewable=False, num_uses=1,
        )  # fmt: skip
        token.wrapped_response = body
        token.wrap_creation_path = creation_path
        info: JSON = {
            "token": token.id,
            "accessor": token.accessor,
            "ttl": ttl,
            "creation_time": rfc3339_nano(now),
            "creation_path": creation_path,
        }
        if wrapped_accessor:
            info["wrapped_accessor"] = wrapped_accessor
        return info

    def wrapping_token(self, token_id: str) -> Token:
        token = self.lookup_token(token_id)
        if token is None or token.wrapped_response is None:
            raise bad_request("wrapping token is not valid or does not exist")
        return token

    # -- the request pipeline -------------------------------------------------------------

    def sudo_required(self, path: str) -> bool:
        return path in SUDO_EXACT or any(path.startswith(p) for p in SUDO_PREFIXES)

    def check_acl(self, token: Token, path: str, operation: str) -> bool:
        acl = self.policies.acl(token.policies)
        return acl.allows(path, operation, sudo=self.sudo_required(path))

    def has_sudo(self, token: Token, path: str) -> bool:
        acl = self.policies.acl(token.policies)
        return acl.root or "sudo" in acl.capabilities(path)

    def envelope(self, reply: Reply, mount_type: str) -> JSON:
        body: JSON = {
            "request_id": new_uuid(),
            "lease_id": reply.lease_id,
            "renewable": reply.renewable,
            "lease_duration": reply.lease_duration,
            "data": reply.data,
            "wrap_info": None,
            "warnings": reply.warnings or None,
            "auth": reply.auth,
            "mount_type": mount_type,
        }
        if reply.top_level and reply.data:
            body = {**reply.data, **body}
        return body

    def parse_wrap_ttl(self, header: str | None) -> int:
        if not header:
            return 0
        try:
            return parse_duration(header, "wrap_ttl")
        except VaultError:
            raise bad_request(f'error parsing wrap TTL: invalid duration "{header}"') from None


def json_bytes(body: JSON) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"
