"""What a stopped process may leave half done, and how another worker finishes it.

What people are told follows from the audit chain (the Slack notifier's cursor), so nothing
here repairs messages. A worker issuing a credential holds the request's claim until it has
handed it over, and the request awaits delivery until then: one still awaiting it whose claim
can be taken was never delivered, and its credential, held only in the memory of the process
that died, is lost. That access is ended, which the notifier tells the requester (ask again).
Closes cut short are finished by `incidents.complete_close`.
"""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from bot.domain import events
from bot.domain.access import AccessRequest, RequestState
from bot.domain.grant import Grant
from bot.domain.ports import Claim, CredentialBroker, UnitOfWork, UnitOfWorkFactory
from bot.services.common import (
    access_of,
    claim_key,
    incident_by_id,
    lock_request,
    record_access,
)
from bot.services.issuing import revoke_grant

UNDELIVERED = "the credential was never delivered (Gatehouse stopped first); request access again"


def hold_request(
    *, uow: UnitOfWorkFactory, request_id: str, wait: bool = True
) -> AbstractContextManager[Claim]:
    """Held while a worker changes a request and tells people about it."""
    return uow.claim(claim_key("request", request_id), wait=wait)


def hold_incident(
    *, uow: UnitOfWorkFactory, incident_id: str, wait: bool = True
) -> AbstractContextManager[Claim]:
    """Held while a worker closes an incident in Slack (summary, archive)."""
    return uow.claim(claim_key("incident", incident_id), wait=wait)


def undelivered_requests(*, uow: UnitOfWorkFactory, limit: int = 100) -> Sequence[AccessRequest]:
    """ACTIVE requests whose credential has not been handed over yet, the oldest `limit`."""
    with uow() as tx:
        return tx.requests.list_awaiting_delivery(limit)


def is_incident_open(*, uow: UnitOfWorkFactory, incident_id: str) -> bool:
    with uow() as tx:
        return incident_by_id(tx, incident_id).is_open


def end_undelivered(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    request_id: str,
    clock: Callable[[], datetime],
) -> AccessRequest | None:
    """End access whose credential never reached the requester; None if it is not that case.

    Call it holding the request's claim: an ACTIVE request still marked then has no worker
    delivering it.
    """
    now = clock()

    def record_end(tx: UnitOfWork) -> tuple[AccessRequest, Grant | None] | None:
        _, request = lock_request(tx, request_id)
        if request.state is not RequestState.ACTIVE or not request.awaiting_delivery:
            return None
        access = access_of(tx, request)
        request.awaiting_delivery = False
        ended = access.end(events.EndCause.UNDELIVERED, now=now, by=None, reason=UNDELIVERED)
        record_access(tx, access, ended)
        return request, access.grant

    ended = uow.run(record_end)
    if ended is None:
        return None
    request, grant = ended
    if grant is not None:
        revoke_grant(uow=uow, broker=broker, grant_id=grant.id, clock=clock)
    return request
