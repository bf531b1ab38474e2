"""Small helpers every use case shares: ids, audit envelopes, loading with clear errors."""

import base64
import secrets
from collections.abc import Sequence
from typing import TypedDict

from bot.domain import events
from bot.domain.access import REQUEST_ID_LENGTH, AccessRequest
from bot.domain.errors import NotFound
from bot.domain.grant import Grant
from bot.domain.incident import Incident
from bot.domain.lifecycle import Access
from bot.domain.ports import UnitOfWork
from bot.domain.text import shown_id


def claim_key(kind: str, item_id: str) -> str:
    """The name of the claim on one item's outside work, e.g. `issue:R-7K3QF2AB`."""
    return f"{kind}:{item_id.strip().upper()}"


def random_token() -> str:
    """Eight characters of base32: short enough to type, wide enough not to collide."""
    return base64.b32encode(secrets.token_bytes(5)).decode("ascii")


def incident_for_channel(uow: UnitOfWork, channel_id: str, *, for_update: bool = False) -> Incident:
    incident = uow.incidents.get_by_channel(channel_id, for_update=for_update)
    if incident is None:
        raise NotFound(
            "This is not an incident channel. Run this in the channel Gatehouse made with "
            "/incident open, or open an incident first."
        )
    return incident


def incident_by_id(uow: UnitOfWork, incident_id: str, *, for_update: bool = False) -> Incident:
    incident = uow.incidents.get(incident_id, for_update=for_update)
    if incident is None:
        raise NotFound(f"There is no incident {incident_id}.")
    return incident


def request_by_id(uow: UnitOfWork, request_id: str, *, for_update: bool = False) -> AccessRequest:
    request = uow.requests.get(request_id.strip().upper(), for_update=for_update)
    if request is None:
        typed = shown_id(request_id, length=REQUEST_ID_LENGTH)
        raise NotFound(
            f"There is no access request {typed}."
            if typed
            else "There is no access request with that id: ids look like R-XXXXXXXX."
        )
    return request


def held_incident(uow: UnitOfWork, incident_id: str) -> Incident:
    """The incident, held against a close until the transaction ends (see `hold`)."""
    incident = uow.incidents.hold(incident_id)
    if incident is None:
        raise NotFound(f"There is no incident {incident_id}.")
    return incident


def lock_request(uow: UnitOfWork, request_id: str) -> tuple[Incident, AccessRequest]:
    """The request locked for update, in the lock order: its incident held first.

    The request is read once unlocked to learn its incident (which never changes)."""
    incident = held_incident(uow, request_by_id(uow, request_id).incident_id)
    return incident, request_by_id(uow, request_id, for_update=True)


class AboutRequest(TypedDict):
    """The envelope of an event about one request: its incident and itself."""

    incident_id: str
    request_id: str


class AboutGrant(AboutRequest):
    """The envelope of an event about one grant, and the grant's id."""

    grant_id: str


def about_request(request: AccessRequest) -> AboutRequest:
    """Unpacked into an event (`events.X(**about_request(request), ...)`): typed, not free-form."""
    return {"incident_id": request.incident_id, "request_id": request.id}


def about_grant(grant: Grant) -> AboutGrant:
    """As `about_request`, for the events of a grant, which also name it."""
    return {"incident_id": grant.incident_id, "request_id": grant.request_id, "grant_id": grant.id}


def access_of(uow: UnitOfWork, request: AccessRequest) -> Access:
    """The request (locked already, its incident held) with its current grant, locked next:
    the lock order."""
    return Access(request, uow.grants.get_for_request(request.id, for_update=True))


def record_access(
    uow: UnitOfWork,
    access: Access,
    caused: Sequence[events.DomainEvent],
    *,
    request_changed: bool = True,
) -> None:
    """Save the request and its grant as one step of the access left them, and append the
    events that step caused, in this transaction. `request_changed=False`: the step left the
    request as it was (it had ended), so its row, maybe not locked, is not written."""
    if request_changed:
        uow.requests.save(access.request)
    if access.grant is not None:
        uow.grants.save(access.grant)
    for event in caused:
        uow.audit.append(event)
