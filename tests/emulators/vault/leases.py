"""Leases on secrets: who created them, when they end, and listing by prefix."""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import JSON, random_base62, rfc3339_nano


@dataclass
class Lease:
    id: str
    path: str  # the request path that made the secret, e.g. database/creds/readonly
    token_id: str  # the token that created it: revoking that token revokes the lease
    mount: str  # e.g. "database/"
    issue_time: float
    expire_time: float
    renewable: bool = True
    last_renewal: float | None = None
    internal: dict[str, str] = field(default_factory=dict)
    failed_revocations: int = 0
    next_attempt: float = 0.0

    def ttl(self, now: float) -> int:
        return max(0, round(self.expire_time - now))

    def lookup_data(self, now: float) -> JSON:
        return {
            "id": self.id,
            "issue_time": rfc3339_nano(self.issue_time),
            "expire_time": rfc3339_nano(self.expire_time),
            "last_renewal": rfc3339_nano(self.last_renewal) if self.last_renewal else None,
            "renewable": self.renewable,
            "ttl": self.ttl(now),
        }


class LeaseStore:
    def __init__(self) -> None:
        self.leases: dict[str, Lease] = {}

    def register(
        self,
        *,
        path: str,
        token_id: str,
        mount: str,
        now: float,
        ttl: int,
        internal: dict[str, str],
    ) -> Lease:
        lease = Lease(
            id=f"{path}/{random_base62(24)}",
            path=path,
            token_id=token_id,
            mount=mount,
            issue_time=now,
            expire_time=now + ttl,
            internal=internal,
        )
        self.leases[lease.id] = lease
        return lease

    def get(self, lease_id: str) -> Lease | None:
        return self.leases.get(lease_id)

    def remove(self, lease: Lease) -> None:
        self.leases.pop(lease.id, None)

    def owned_by(self, token_id: str) -> list[Lease]:
        return [lease for lease in self.leases.values() if lease.token_id == token_id]

    def under(self, prefix: str) -> list[Lease]:
        return [lease for lease in self.leases.values() if lease.id.startswith(prefix)]

    def due(self, now: float) -> list[Lease]:
        return [
            lease
            for lease in self.leases.values()
            if lease.expire_time <= now and lease.next_attempt <= now
        ]

    def list_keys(self, prefix: str) -> list[str]:
        """The next path segment under `prefix`, folders with a trailing slash, sorted."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        keys: set[str] = set()
        for lease_id in self.leases:
            if not lease_id.startswith(prefix):
                continue
            rest = lease_id[len(prefix) :]
            head, slash, _ = rest.partition("/")
            keys.add(head + slash)
        return sorted(keys)
