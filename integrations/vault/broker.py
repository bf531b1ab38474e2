"""The credential broker over hvac: a token tree per incident, wrapped delivery, checked revocation.

```
bot token ── incident token (orphan, via a token role; one per incident and process)
               └ grant token (ttl = the grant's end)  ── database/creds/<role> lease, read wrapped
               └ grant token (token_policies resource: the token is the credential, wrapped)
```
Revoking a token revokes its children and every lease they created, and Vault does the same when a
TTL runs out: a grant dies on time even if Gatehouse is down, and revoking an incident's tokens at
close kills everything issued for it. Token values live in this process only; accessors are
recorded (in the `IncidentTokenLedger`) before a token is used.
"""

import contextlib
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import hvac
import hvac.exceptions
import requests

from bot.domain.errors import CredentialError, CredentialRejected, CredentialUnavailable
from bot.domain.grant import Grant
from bot.domain.ports import IncidentTokenLedger, IssuedCredential, LiveToken
from bot.domain.rules import Delivery, ResourceRule
from bot.metrics import REVOCATIONS, set_vault_state
from integrations.vault.session import VAULT_CONNECTIONS, VaultSession

# A health probe answers within the liveness probe's 3 s even when Vault hangs.
HEALTH_TIMEOUT_SECONDS = 2.0

INCIDENT_TOKEN_ROLE = "gatehouse-incident"  # noqa: S105 - a role name, not a secret
"""The token role deploy/vault/setup.sh creates: orphan tokens with the resources' policies."""

# An incident token outlives the grants under it by at least this much.
INCIDENT_TOKEN_MARGIN = timedelta(minutes=10)
# Made or renewed, it is asked for this much more than the grant in hand needs (Vault caps it at
# the token role's explicit max TTL), so the next grants fit under it as it is: an access costs
# Vault one renewal an hour, not one each.
INCIDENT_TOKEN_HEADROOM = timedelta(hours=1)


class _StillHeld(CredentialUnavailable):
    """Vault answered a lookup: the token or lease is still there."""


@dataclass
class _IncidentToken:
    token: str = field(repr=False)
    accessor: str
    expires_at: datetime


class VaultCredentialBroker:
    def __init__(
        self,
        session: VaultSession,
        *,
        incident_policies: Sequence[str],
        ledger: IncidentTokenLedger,
        token_role: str = INCIDENT_TOKEN_ROLE,
        wrap_ttl: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session = session
        self._incident_policies = list(incident_policies)
        self._ledger = ledger
        self._token_role = token_role
        self._wrap_ttl = wrap_ttl
        self._clock = clock
        self._incident_tokens: dict[str, _IncidentToken] = {}
        self._lock = threading.Lock()

    # -- issue ----------------------------------------------------------------------------------

    def issue(
        self, *, grant: Grant, resource: ResourceRule, until: datetime, now: datetime
    ) -> IssuedCredential:
        """Issue one credential that Vault itself expires at `until`."""
        seconds = _seconds_until(until, now)
        if seconds <= 0:
            raise CredentialRejected(f"Grant {grant.id} has already ended; nothing to issue.")
        incident_client = self._session.new_client(
            token=self._incident_token(grant.incident_id, until, now).token
        )
        # The hard ceiling is the resource's max_ttl from the first issue, so an approved
        # extension can renew the token; without the default policy the holder of a delivered
        # token cannot renew it (renew-self) and extend their own access.
        ceiling = _seconds_until(grant.created_at + resource.max_ttl, now)
        create = {
            "policies": list(resource.vault_policies),
            "ttl": f"{seconds}s",
            "explicit_max_ttl": f"{max(ceiling, seconds)}s",
            "renewable": True,
            "display_name": f"gatehouse-{grant.request_id}",
            "meta": {
                "gatehouse_incident": grant.incident_id,
                "gatehouse_request": grant.request_id,
                "gatehouse_grant": grant.id,
                "gatehouse_resource": resource.name,
            },
            "no_default_policy": True,
        }
        expires_at = now + timedelta(seconds=seconds)
        if resource.vault.path is None:
            return self._issue_token(incident_client, create, resource, expires_at, now)
        return self._issue_dynamic_secret(incident_client, create, resource, expires_at, now)

    def _issue_token(
        self,
        client: hvac.Client,
        create: dict[str, Any],
        resource: ResourceRule,
        expires_at: datetime,
        now: datetime,
    ) -> IssuedCredential:
        path = "auth/token/create"
        if resource.delivery is Delivery.EPHEMERAL:
            response = self._session.call(
                f"create a token for {resource.name}",
                lambda: client.auth.token.create(**create),
                path=path,
            )
            auth = response["auth"]
            return IssuedCredential(
                lease_id=None,
                token_accessor=auth["accessor"],
                expires_at=expires_at,
                secret={"token": auth["client_token"]},
            )
        response = self._session.call(
            f"create a token for {resource.name}",
            lambda: client.auth.token.create(**create, wrap_ttl=self._wrap_ttl_text),
            path=path,
        )
        wrap = response["wrap_info"]
        return IssuedCredential(
            lease_id=None,
            token_accessor=wrap.get("wrapped_accessor"),
            expires_at=expires_at,
            wrapping_token=wrap["token"],
            wrapping_accessor=wrap["accessor"],
            wrapping_expires_at=now + timedelta(seconds=int(wrap["ttl"])),
        )

    def _issue_dynamic_secret(
        self,
        client: hvac.Client,
        create: dict[str, Any],
        resource: ResourceRule,
        expires_at: datetime,
        now: datetime,
    ) -> IssuedCredential:
        path = resource.vault.path
        assert path is not None
        response = self._session.call(
            f"create the grant token for {resource.name}",
            lambda: client.auth.token.create(**create),
            path="auth/token/create",
        )
        grant_token, accessor = response["auth"]["client_token"], response["auth"]["accessor"]
        grant_client = self._session.new_client(token=grant_token)
        wrap_ttl = None if resource.delivery is Delivery.EPHEMERAL else self._wrap_ttl_text
        try:
            secret = self._session.call(
                f"read {path}",
                lambda: grant_client.read(path, wrap_ttl=wrap_ttl),
                path=path,
                capability="read",
            )
        except CredentialError:
            self._revoke_accessor_quietly(accessor)  # nothing half-issued stays behind
            raise
        if secret is None:
            self._revoke_accessor_quietly(accessor)
            raise CredentialRejected(f"Vault has nothing at {path}: check the resource's path.")
        if wrap_ttl is None:
            return IssuedCredential(
                lease_id=secret.get("lease_id") or None,
                token_accessor=accessor,
                expires_at=expires_at,
                secret={k: str(v) for k, v in (secret.get("data") or {}).items()},
            )
        wrap = secret["wrap_info"]
        return IssuedCredential(
            lease_id=None,  # Vault keeps the lease id inside the wrapped response
            token_accessor=accessor,
            expires_at=expires_at,
            wrapping_token=wrap["token"],
            wrapping_accessor=wrap["accessor"],
            wrapping_expires_at=now + timedelta(seconds=int(wrap["ttl"])),
        )

    @property
    def _wrap_ttl_text(self) -> str:
        return f"{int(self._wrap_ttl.total_seconds())}s"

    # -- incident tokens ------------------------------------------------------------------------

    def _incident_token(
        self, incident_id: str, needed_until: datetime, now: datetime
    ) -> _IncidentToken:
        """This process's token for the incident, long enough for `needed_until`."""
        needed = needed_until + INCIDENT_TOKEN_MARGIN
        asked = needed + INCIDENT_TOKEN_HEADROOM
        with self._lock:
            current = self._incident_tokens.get(incident_id)
            if current is not None and current.expires_at >= needed:
                return current
            if current is not None and self._extend(current, asked, now) >= needed:
                return current
            fresh = self._create_incident_token(incident_id, asked, now)
            self._incident_tokens[incident_id] = fresh
            return fresh

    def _create_incident_token(
        self, incident_id: str, until: datetime, now: datetime
    ) -> _IncidentToken:
        bot = self._session.client
        seconds = _seconds_until(until, now)
        response = self._session.call(
            f"create the token of incident {incident_id}",
            lambda: bot.auth.token.create(
                role_name=self._token_role,
                policies=self._incident_policies,
                ttl=f"{seconds}s",
                renewable=True,
                display_name=f"gatehouse-{incident_id}",
                meta={"gatehouse_incident": incident_id, "gatehouse_kind": "incident"},
            ),
            path=f"auth/token/create/{self._token_role}",
            as_bot=True,
        )
        auth = response["auth"]
        # The accessor is on record before the token is used, so close can always revoke it.
        self._ledger.record(incident_id, auth["accessor"])
        lease = int(auth.get("lease_duration") or seconds)
        return _IncidentToken(
            auth["client_token"], auth["accessor"], now + timedelta(seconds=lease)
        )

    def _extend(self, token: _IncidentToken, until: datetime, now: datetime) -> datetime:
        """Renew the token towards `until`; returns the end Vault granted (`now` if refused)."""
        client = self._session.new_client(token=token.token)
        seconds = _seconds_until(until, now)
        try:
            response = self._session.call(
                "renew an incident token",
                lambda: client.auth.token.renew_self(increment=f"{seconds}s"),
                path="auth/token/renew-self",
            )
        except CredentialError:
            return now
        lease = int(response["auth"].get("lease_duration") or 0)
        token.expires_at = now + timedelta(seconds=lease)
        return token.expires_at

    def health(self, timeout: float = HEALTH_TIMEOUT_SECONDS) -> str:
        """Vault's state from its unauthenticated sys/health, one of metrics.VAULT_STATES.

        hvac answers a sealed or uninitialized Vault with the HTTP response instead of raising,
        so the status and body are read here: 200 active; 429, 472, 473 a standby (it forwards
        requests); 503 or "sealed": true sealed; 501 uninitialized. Bounded by `timeout`, so a
        hung Vault cannot hold up a health probe."""
        state = self._probe_health(timeout)
        set_vault_state(state)
        return state

    def _probe_health(self, timeout: float) -> str:
        client = self._session.new_client(token=None)
        client.adapter._kwargs["timeout"] = min(timeout, self._session.config.timeout_seconds)
        try:
            answer = client.sys.read_health_status(standby_ok=False, method="GET")
        except requests.exceptions.RequestException:
            return "unreachable"
        except Exception:
            return "error"
        if isinstance(answer, dict):
            return "sealed" if answer.get("sealed") else "active"
        return _vault_state(answer)

    def forget_incident(self, incident_id: str) -> None:
        with self._lock:
            self._incident_tokens.pop(incident_id, None)

    # -- revoke ---------------------------------------------------------------------------------

    def revoke(self, *, grant: Grant) -> datetime:
        """Revoke the grant's lease and token; return when lookups confirmed both are gone."""
        try:
            confirmed = self._revoke(grant)
        except CredentialError:
            REVOCATIONS.labels("failed").inc()
            raise
        REVOCATIONS.labels("confirmed").inc()
        return confirmed

    def _revoke(self, grant: Grant) -> datetime:
        bot = self._session.client
        if grant.lease_id:
            lease_id = grant.lease_id
            self._session.call(
                f"revoke lease {lease_id}",
                lambda: bot.sys.revoke_lease(lease_id=lease_id),
                path="sys/leases/revoke",
                as_bot=True,
            )
        if grant.token_accessor:
            self._revoke_accessor(grant.token_accessor)
        return self._confirm_gone(lease_id=grant.lease_id, accessors=[grant.token_accessor])

    def revoke_incident(self, *, incident_id: str, accessors: Sequence[str]) -> datetime:
        """Revoke every recorded token of the incident (all replicas'), side by side, and with
        them every grant token and lease under them (Vault revokes a token's children and the
        leases they created); then confirm each incident token is gone, side by side too."""
        with ThreadPoolExecutor(max_workers=max(1, min(len(accessors), VAULT_CONNECTIONS))) as pool:
            list(pool.map(self._revoke_accessor, accessors))
            self.forget_incident(incident_id)
            gone = list(
                pool.map(lambda accessor: self._confirm_gone(lease_id=None, accessors=[accessor]),
                         accessors)
            )  # fmt: skip
        return max(gone, default=self._clock())

    def confirm_gone(self, *, grant: Grant) -> datetime | None:
        """Look up the grant's token and lease: when both are gone, None while Vault holds one."""
        try:
            return self._confirm_gone(lease_id=grant.lease_id, accessors=[grant.token_accessor])
        except _StillHeld:
            return None

    def _revoke_accessor(self, accessor: str) -> None:
        bot = self._session.client
        # "invalid accessor" (400) means already revoked or expired, which is what we want.
        with contextlib.suppress(CredentialRejected):
            self._session.call(
                "revoke a token",
                lambda: bot.auth.token.revoke_accessor(accessor=accessor),
                path="auth/token/revoke-accessor",
                as_bot=True,
            )

    def _revoke_accessor_quietly(self, accessor: str) -> None:
        # If this fails too, the token dies on its own TTL; reconciliation finds it meanwhile.
        with contextlib.suppress(CredentialError):
            self._revoke_accessor(accessor)

    def _confirm_gone(self, *, lease_id: str | None, accessors: Sequence[str | None]) -> datetime:
        bot = self._session.client
        for accessor in filter(None, accessors):
            if self._exists(partial(bot.auth.token.lookup_accessor, accessor=accessor)):
                raise _StillHeld(f"Vault still knows token accessor {accessor} after revoking it.")
        if lease_id and self._exists(lambda: bot.sys.read_lease(lease_id=lease_id)):
            raise _StillHeld(f"Vault still holds lease {lease_id} after revoking it.")
        return self._clock()

    def _exists(self, lookup: Callable[[], object]) -> bool:
        try:
            self._session.call("confirm a revocation", lookup, as_bot=True)
        except CredentialRejected:
            return False  # 400 invalid accessor / invalid lease: gone
        return True

    # -- renew and reconcile --------------------------------------------------------------------

    def renew(self, *, grant: Grant, until: datetime, now: datetime) -> datetime:
        """Extend a grant's token (and lease) to `until`; returns the end Vault granted."""
        if grant.token_accessor is None:
            raise CredentialRejected(f"Grant {grant.id} has no token to renew.")
        self._incident_token(grant.incident_id, until, now)
        bot = self._session.client
        seconds = _seconds_until(until, now)
        accessor = grant.token_accessor
        response = self._session.call(
            "renew a grant token",
            lambda: bot.auth.token.renew_accessor(accessor=accessor, increment=f"{seconds}s"),
            path="auth/token/renew-accessor",
            as_bot=True,
        )
        granted = now + timedelta(seconds=int(response["auth"].get("lease_duration") or 0))
        if grant.lease_id:
            lease_id = grant.lease_id
            lease = self._session.call(
                f"renew lease {lease_id}",
                lambda: bot.sys.renew_lease(lease_id=lease_id, increment=seconds),
                path="sys/leases/renew",
                as_bot=True,
            )
            granted = min(granted, now + timedelta(seconds=int(lease.get("lease_duration") or 0)))
        return granted

    def list_leases(self, prefix: str) -> list[str]:
        """Lease ids Vault holds under `prefix` (e.g. `database/creds/inference-logs-ro/`)."""
        bot = self._session.client
        folder = prefix.rstrip("/") + "/"
        try:
            response = self._session.call(
                f"list leases under {folder}",
                lambda: bot.sys.list_leases(prefix=folder),
                path=f"sys/leases/lookup/{folder}",
                capability="list",
                as_bot=True,
            )
        except CredentialRejected:
            return []
        keys = (response or {}).get("data", {}).get("keys", [])
        return [folder + key for key in keys if not key.endswith("/")]

    def live_tokens(self) -> list[LiveToken]:
        """Every live token Gatehouse made, found by its metadata: for reconciliation."""
        bot = self._session.client
        listed = self._session.call(
            "list token accessors",
            lambda: bot.auth.token.list_accessors(),
            path="auth/token/accessors/",
            capability="list",
            as_bot=True,
        )
        found = []
        for accessor in listed.get("data", {}).get("keys", []):
            try:
                info = self._session.call(
                    "look up a token",
                    partial(bot.auth.token.lookup_accessor, accessor=accessor),
                    as_bot=True,
                )
            except CredentialRejected:
                continue  # expired between the list and the lookup
            meta = (info.get("data") or {}).get("meta") or {}
            if "gatehouse_incident" in meta:
                found.append(
                    LiveToken(accessor, meta["gatehouse_incident"], meta.get("gatehouse_grant"))
                )
        return found

    def revoke_token(self, *, accessor: str) -> datetime:
        """Revoke one token by accessor and confirm it is gone (reconciliation)."""
        self._revoke_accessor(accessor)
        return self._confirm_gone(lease_id=None, accessors=[accessor])

    def revoke_lease(self, *, lease_id: str) -> datetime:
        """Revoke one lease (already gone is fine) and confirm Vault no longer holds it."""
        bot = self._session.client
        self._session.call(
            f"revoke lease {lease_id}",
            lambda: bot.sys.revoke_lease(lease_id=lease_id),
            path="sys/leases/revoke",
            as_bot=True,
        )
        return self._confirm_gone(lease_id=lease_id, accessors=[])


def _seconds_until(moment: datetime, now: datetime) -> int:
    return math.ceil((moment - now).total_seconds())


def _vault_state(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if body.get("sealed") is True or answer.status_code == 503:
        return "sealed"
    if body.get("initialized") is False or answer.status_code == 501:
        return "uninitialized"
    if answer.status_code in (429, 472, 473):
        return "standby"
    return "active" if answer.status_code == 200 else "error"
