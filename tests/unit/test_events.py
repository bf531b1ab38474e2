"""Typed domain events: each one stored and read back unchanged, old entries read back typed."""

import json
import types
import typing
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain import events
from bot.domain.access import CLOSE_REASON
from bot.domain.audit import Action, AuditEntry, canonical_json, next_in_chain
from bot.domain.events import AccessEnded, EndCause
from bot.services.recovery import UNDELIVERED

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ENVELOPE = {"at", "actor", "incident_id", "request_id"}

# The reason each way access ends has always been stored with.
END_REASONS = {
    EndCause.EXPIRED: "expired",
    EndCause.REVOKED: "revoked by U0LEAD1",
    EndCause.INCIDENT_CLOSED: CLOSE_REASON,
    EndCause.UNDELIVERED: UNDELIVERED,
    EndCause.BREAK_GLASS_DENIED: "break-glass denied by U0LEAD1: not an emergency",
}


def _sample(hint: Any, name: str) -> object:
    """A value of the field's type that differs from its default, so a lost field shows."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    kind = next(option for option in options if option is not type(None))
    if kind is bool:
        return True
    if kind is int:
        return 7
    if kind is str:
        return f"{name} ü"
    if kind is datetime:
        return T0 + timedelta(hours=2, microseconds=5)
    if typing.get_origin(kind) is tuple:
        return (f"{name}-b", f"{name}-a")
    raise AssertionError(f"no sample for {name}: {hint}")


def _full(event_type: type[events.DomainEvent]) -> events.DomainEvent:
    """An event of this class with every field set."""
    hints = typing.get_type_hints(event_type)
    values = {
        field.name: _sample(hints[field.name], field.name)
        for field in fields(event_type)
        if field.name not in ENVELOPE
    }
    return event_type(
        at=T0, actor="U0LEAD1", incident_id="INC-20261123-ABCD", request_id="R-7K3QF2AB", **values
    )


def _stored(entry: AuditEntry) -> AuditEntry:
    """The entry as the store reads it back: its data through canonical JSON."""
    return AuditEntry(
        action=entry.action,
        at=entry.at,
        actor=entry.actor,
        incident_id=entry.incident_id,
        request_id=entry.request_id,
        data=json.loads(canonical_json(entry.data)),
    )


def _every_event() -> list[events.DomainEvent]:
    found = [_full(t) for t in events.EVENT_TYPES if t is not AccessEnded]
    found += [
        AccessEnded(
            at=T0, actor="U0LEAD1", incident_id="INC-1", request_id="R-1", why=why, reason=text
        )
        for why, text in END_REASONS.items()
    ]
    return found


@pytest.mark.parametrize("event", _every_event(), ids=lambda event: type(event).__name__)
def test_every_event_reads_back_as_it_was_written(event: events.DomainEvent) -> None:
    entry = event.to_entry()
    assert events.from_entry(_stored(entry)) == event
    sealed = next_in_chain(_stored(entry), None)
    assert sealed.typed == event
    assert sealed.hash == next_in_chain(entry, None).hash  # the hash covers the stored bytes


@pytest.mark.parametrize("event", _every_event(), ids=lambda event: type(event).__name__)
def test_every_field_is_stored_under_its_own_name(event: events.DomainEvent) -> None:
    entry = event.to_entry()
    names = {field.name for field in fields(event)} - ENVELOPE
    if isinstance(event, AccessEnded):
        names.discard("why")  # told by the action and the reason, as it always was
    assert set(entry.data) == names
    assert (entry.at, entry.actor, entry.incident_id, entry.request_id) == (
        event.at,
        event.actor,
        event.incident_id,
        event.request_id,
    )


def test_every_class_is_read_back_from_its_action() -> None:
    actions = [t.action for t in events.EVENT_TYPES]
    assert len(set(actions)) == len(actions)
    assert set(actions) | {Action.REQUEST_EXPIRED} == set(Action)


@pytest.mark.parametrize(
    ("action", "reason", "why"),
    [
        (Action.REQUEST_EXPIRED, "expired", EndCause.EXPIRED),
        (Action.REQUEST_REVOKED, "revoked by U0LEAD1", EndCause.REVOKED),
        (Action.REQUEST_REVOKED, CLOSE_REASON, EndCause.INCIDENT_CLOSED),
        (Action.REQUEST_REVOKED, UNDELIVERED, EndCause.UNDELIVERED),
        (
            Action.REQUEST_REVOKED,
            "break-glass denied by U0LEAD1: not an emergency",
            EndCause.BREAK_GLASS_DENIED,
        ),
        (Action.REQUEST_REVOKED, None, EndCause.REVOKED),
    ],
)
def test_access_ended_reads_its_cause_from_entries_written_before_it_existed(
    action: Action, reason: str | None, why: EndCause
) -> None:
    old = AuditEntry(
        action=action.value,
        at=T0,
        actor="U0LEAD1",
        incident_id="INC-1",
        request_id="R-1",
        data={} if reason is None else {"reason": reason},
    )
    ended = events.from_entry(old)
    assert isinstance(ended, AccessEnded)
    assert (ended.why, ended.reason) == (why, reason)
    assert ended.stored_action() is action


@pytest.mark.parametrize(("why", "reason"), END_REASONS.items())
def test_access_ended_stores_the_action_and_data_it_always_did(why: EndCause, reason: str) -> None:
    entry = AccessEnded(at=T0, request_id="R-1", why=why, reason=reason).to_entry()
    expired = why is EndCause.EXPIRED
    assert entry.action == (Action.REQUEST_EXPIRED if expired else Action.REQUEST_REVOKED)
    assert dict(entry.data) == {"reason": reason}


def test_unknown_keys_are_ignored_and_missing_ones_default() -> None:
    old = AuditEntry(
        action=Action.REQUEST_FILED.value,
        at=T0,
        actor="U0ONCALL2",
        request_id="R-1",
        data={"resource": "inference-logs-ro", "reason": "debug", "retired_key": 1},
    )
    filed = events.from_entry(old)
    assert filed == events.RequestFiled(
        at=T0, actor="U0ONCALL2", request_id="R-1", resource="inference-logs-ro", reason="debug"
    )


def test_an_unknown_action_is_refused_or_skipped() -> None:
    note = AuditEntry(action="incident.note", at=T0, data={"n": 1})
    with pytest.raises(ValueError, match=r"incident\.note"):
        events.from_entry(note)
    assert events.from_entry_if_known(note) is None
