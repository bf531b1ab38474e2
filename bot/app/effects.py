"""What follows a commit besides Slack: the Vault effects and the expiry timers, each a handler
of the event stream (`bot.services.event_stream`) with its own cursor.

Each is idempotent, so a replica taking over from a dead one (at its saved cursor) may repeat
what that one did without harm: a grant found revoked is left alone, an extension found applied
too, and a timer armed again replaces the one armed before. Vault failing never holds the
stream up: the failure is recorded on the grant or the extension, whose own retries (the sweep)
take it from there, and the handler goes on.

Issuing is not here: the credential exists only in the memory of the worker that asked Vault
for it, which hands it over itself (`workflows.issue_and_deliver`).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog

from bot import metrics
from bot.domain import events
from bot.domain.access import RequestState
from bot.domain.extension import ExtensionState
from bot.domain.grant import GrantStatus
from bot.domain.ports import CredentialBroker, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy
from bot.services import extensions, issuing
from bot.services.crashpoints import crash_point
from bot.services.event_stream import Batch, StreamEvent

VAULT_EFFECTS = "vault-effects"
EXPIRY_TIMERS = "expiry-timers"
log = structlog.get_logger(__name__)


class Resources(Protocol):
    """What the handlers act with, read when they act (`Deps`, whose broker or timers a test
    may swap after building it)."""

    @property
    def uow(self) -> UnitOfWorkFactory: ...
    @property
    def policy(self) -> AccessPolicy: ...
    @property
    def broker(self) -> CredentialBroker: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def schedule_expiry(self) -> Callable[[str, datetime], None]: ...


class VaultEffects:
    """Revokes a grant whose revocation was recorded, and renews an approved extension."""

    name = VAULT_EFFECTS

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    def handle(self, item: StreamEvent, batch: Batch, *, in_doubt: bool) -> bool:
        """Both effects are repeatable: the cursor is saved on the timer, not after each."""
        event = item.event
        if isinstance(event, events.RevocationRequested):
            self._revoke(event, batch)
        elif isinstance(event, events.ExtensionApproved):
            self._renew(event, batch)
        return False

    def _revoke(self, event: events.RevocationRequested, batch: Batch) -> None:
        """Ask Vault once, under the grant's claim. A grant revoked already, or whose first
        attempt failed (its backoff is the sweep's), is left alone, as is one another worker
        is revoking now (an expiry) and every grant of an incident being closed: the close
        cuts them all at once and confirms each (`incidents.complete_close`, which recovery
        finishes after a stop). The stream does not wait for them."""
        res = self._resources
        grant = batch.grant(event.grant_id)
        if grant is None or not grant.revocation_due(res.clock()):
            return
        incident = batch.incident(grant.incident_id)
        if incident is not None and incident.closing:
            return
        revoked = issuing.revoke_grant(
            uow=res.uow, broker=res.broker, grant_id=grant.id, clock=res.clock, wait=False
        )
        if revoked.status is GrantStatus.REVOKING and revoked.last_error:
            log.warning(
                "revocation not confirmed; the sweep asks Vault again",
                grant_id=revoked.id,
                request_id=revoked.request_id,
                error=revoked.last_error,
                retry_at=revoked.revoke_retry_at,
            )

    def _renew(self, event: events.ExtensionApproved, batch: Batch) -> None:
        """Renew in Vault and record the new end, unless the extension is not (or no longer)
        the approved one; Vault down leaves it APPROVED for the sweep (`extending.sweep`)."""
        res = self._resources
        request = batch.request(event.request_id)
        extension = request.open_extension if request is not None else None
        if (
            request is None
            or extension is None
            or extension.id != event.extension_id
            or extension.state is not ExtensionState.APPROVED
        ):
            return
        result = extensions.apply_extension(
            uow=res.uow,
            policy=res.policy,
            broker=res.broker,
            request_id=request.id,
            clock=res.clock,
        )
        if result is None:
            return  # another worker renews it, or it ended meanwhile
        if result.retrying:
            log.warning(
                "extension not applied: Vault is unavailable; the sweep tries again",
                request_id=request.id,
                extension_id=extension.id,
            )
            return
        if result.extension.state is ExtensionState.APPLIED:
            crash_point("extension.applied")
        count_extension(result)


class ExpiryTimers:
    """Arms this replica's expiry timer at the end an issue or an extension recorded. The
    timer only triggers: the database decides whether access is due then."""

    name = EXPIRY_TIMERS

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    def handle(self, item: StreamEvent, batch: Batch, *, in_doubt: bool) -> bool:
        event = item.event
        if not isinstance(event, events.Issued | events.ExtensionApplied):
            return False
        request = batch.request(event.request_id)
        active = request is not None and request.state is RequestState.ACTIVE
        if active and request is not None and event.ends_at is not None:  # ended: no timer
            self._resources.schedule_expiry(request.id, event.ends_at)
        return False


def count_extension(result: extensions.ExtensionResult) -> None:
    """Counts an extension once it is decided for good (applied, denied, failed)."""
    if not result.extension.state.is_open:
        metrics.EXTENSIONS.labels(result.request.resource, result.extension.state.value).inc()
