"""Grants: the record of one credential issued for one approved request.

The grant is written (ISSUING) before Vault is called, so a crash between the two leaves a trace
that reconciliation can clean up. Revocation is recorded as requested first and confirmed only
when the broker has checked that Vault no longer knows the credential.

A grant is only the credential's record: when access ends and why is its request's (the one
truth), and both move together through `bot.domain.lifecycle.Access`.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.domain.backoff import retry_wait
from bot.domain.errors import InvalidState

FIRST_REVOKE_RETRY = timedelta(seconds=15)
LONGEST_REVOKE_WAIT = timedelta(minutes=5)


class CredentialIds(Protocol):
    """The non-secret identifiers of an issued credential."""

    @property
    def lease_id(self) -> str | None: ...
    @property
    def token_accessor(self) -> str | None: ...
    @property
    def wrapping_accessor(self) -> str | None: ...


class GrantStatus(StrEnum):
    ISSUING = "issuing"
    ACTIVE = "active"
    REVOKING = "revoking"
    REVOKED = "revoked"
    FAILED = "failed"


@dataclass
class Grant:
    id: str
    request_id: str
    incident_id: str
    resource: str
    requester_id: str
    created_at: datetime
    status: GrantStatus = GrantStatus.ISSUING
    lease_id: str | None = None
    token_accessor: str | None = None
    wrapping_accessor: str | None = None
    issued_at: datetime | None = None
    revoke_requested_at: datetime | None = None
    revoked_at: datetime | None = None
    revoke_attempts: int = 0
    last_error: str | None = None
    revoke_retry_at: datetime | None = None  # after a failed revocation: when to ask Vault again
    retry_at: datetime | None = None  # after a failed issue: when its request is issued again

    def mark_issued(self, *, credential: "CredentialIds", now: datetime) -> None:
        self._require(GrantStatus.ISSUING)
        self.status = GrantStatus.ACTIVE
        self.attach_credential(credential)
        self.issued_at = now

    def attach_credential(self, credential: "CredentialIds") -> None:
        """Record what Vault issued (ids only, never a secret), also for a grant whose revocation
        was asked while Vault was issuing it."""
        self._require(GrantStatus.ISSUING, GrantStatus.ACTIVE, GrantStatus.REVOKING)
        self.lease_id = credential.lease_id
        self.token_accessor = credential.token_accessor
        self.wrapping_accessor = credential.wrapping_accessor

    @property
    def has_credential(self) -> bool:
        return bool(self.lease_id or self.token_accessor)

    @property
    def is_live(self) -> bool:
        """Being issued or issued, and not yet asked to be revoked."""
        return self.status in (GrantStatus.ISSUING, GrantStatus.ACTIVE)

    def mark_failed(self, *, error: str, retry_at: datetime | None = None) -> None:
        """Vault issued nothing: the attempt ended, empty. `retry_at`: when its request is to
        be issued again (None: never)."""
        self._require(GrantStatus.ISSUING, GrantStatus.REVOKING)
        self.status = GrantStatus.FAILED
        self.last_error = error
        self.retry_at = retry_at

    def request_revocation(self, *, now: datetime) -> bool:
        """Its access ended: Vault is to revoke the credential and confirm. False when that
        was already asked (why is the request's `end_reason` and the audit's)."""
        if self.status in (GrantStatus.REVOKING, GrantStatus.REVOKED):
            return False
        self._require(GrantStatus.ACTIVE, GrantStatus.ISSUING)
        self.status = GrantStatus.REVOKING
        self.revoke_requested_at = now
        return True

    def confirm_revoked(self, *, confirmed_at: datetime) -> None:
        self._require(GrantStatus.REVOKING)
        self.status = GrantStatus.REVOKED
        self.revoked_at = confirmed_at
        self.last_error = None

    def revocation_failed(self, *, error: str, now: datetime) -> None:
        """Vault did not confirm: ask again after a backoff (15 s, doubling, at most 5 min)."""
        self._require(GrantStatus.REVOKING)
        self.revoke_attempts += 1
        self.last_error = error
        self.revoke_retry_at = now + retry_wait(
            self.revoke_attempts, first=FIRST_REVOKE_RETRY, longest=LONGEST_REVOKE_WAIT
        )

    def revocation_due(self, now: datetime) -> bool:
        """A REVOKING grant Vault should be asked about now: never tried, or its backoff passed."""
        return self.status is GrantStatus.REVOKING and (
            self.revoke_retry_at is None or now >= self.revoke_retry_at
        )

    def _require(self, *allowed: GrantStatus) -> None:
        if self.status not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise InvalidState(f"Grant {self.id} is {self.status.value}, not {names}.")
