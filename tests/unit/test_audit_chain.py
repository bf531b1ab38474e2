"""The hash chain: sealing, verification, and every way of tampering with it."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    ChainProblem,
    canonical_json,
    chain_hash,
    next_in_chain,
    seal,
    verify_chain,
    verify_rows,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def make_chain(length: int) -> list[AuditEvent]:
    chain: list[AuditEvent] = []
    for n in range(length):
        entry = AuditEntry(
            action="request.decided",
            at=T0 + timedelta(seconds=n),
            actor=f"U{n % 5}",
            incident_id="INC-1",
            request_id=f"R-{n % 7}",
            data={"n": n, "verdict": "approve", "names": ["a", "ü"]},
        )
        chain.append(next_in_chain(entry, chain[-1] if chain else None))
    return chain


def renumber(events: list[AuditEvent]) -> list[AuditEvent]:
    return [replace(event, seq=n) for n, event in enumerate(events, start=1)]


def test_hash_is_sha256_of_previous_hash_and_canonical_json() -> None:
    entry = AuditEntry(action="incident.opened", at=T0, actor="U1", data={"b": 1, "a": "x"})
    event = seal(entry, seq=1, prev_hash=GENESIS_HASH)
    canonical = (
        b'{"action":"incident.opened","actor":"U1","at":"2026-11-23T09:00:00.000000+00:00",'
        b'"data":{"a":"x","b":1},"incident_id":null,"request_id":null}'
    )
    assert entry.canonical() == canonical
    assert event.hash == chain_hash(GENESIS_HASH, canonical)


def test_canonical_form_is_independent_of_key_order_and_time_zone() -> None:
    east = datetime(2026, 11, 23, 11, 0, tzinfo=UTC).astimezone()
    one = AuditEntry(action="x", at=east, data={"a": 1, "b": 2})
    two = AuditEntry(action="x", at=east.astimezone(UTC), data={"b": 2, "a": 1})
    assert one.canonical() == two.canonical()
    assert canonical_json({"k": "ü"}) == '{"k":"ü"}'.encode()


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditEntry(action="x", at=datetime(2026, 1, 1)).canonical()


def test_an_untouched_chain_verifies() -> None:
    chain = make_chain(50)
    report = verify_chain(chain)
    assert report.ok
    assert (report.checked, report.head_seq, report.head_hash) == (50, 50, chain[-1].hash)
    assert verify_chain([]).ok


def test_changed_content_is_caught() -> None:
    chain = make_chain(10)
    forged = replace(chain[4].entry, actor="U-ATTACKER")
    chain[4] = replace(chain[4], entry=forged)
    report = verify_chain(chain)
    assert (report.problem, report.first_bad_seq) == (ChainProblem.CHANGED, 5)
    assert "no longer matches its hash" in report.detail


def test_missing_event_with_a_gap_is_caught() -> None:
    chain = make_chain(10)
    del chain[6]
    report = verify_chain(chain)
    assert (report.problem, report.first_bad_seq) == (ChainProblem.MISSING, 7)


def test_missing_event_hidden_by_renumbering_is_caught() -> None:
    chain = make_chain(10)
    del chain[6]
    report = verify_chain(renumber(chain))
    assert (report.problem, report.first_bad_seq) == (ChainProblem.MISSING, 7)


def test_reordered_events_are_caught() -> None:
    chain = make_chain(10)
    chain[3], chain[7] = replace(chain[7], seq=4), replace(chain[3], seq=8)
    report = verify_chain(chain)
    assert (report.problem, report.first_bad_seq) == (ChainProblem.REORDERED, 4)


def test_adjacent_swap_is_caught_as_reordered() -> None:
    chain = make_chain(10)
    chain[2], chain[3] = replace(chain[3], seq=3), replace(chain[2], seq=4)
    report = verify_chain(chain)
    assert (report.problem, report.first_bad_seq) == (ChainProblem.REORDERED, 3)


def test_inserted_event_with_a_forged_hash_is_caught() -> None:
    chain = make_chain(10)
    entry = AuditEntry(action="request.approved", at=T0, actor="U-ATTACKER", incident_id="INC-1")
    forged = seal(entry, seq=5, prev_hash=chain[3].hash)  # links correctly to event 4
    tampered = renumber([*chain[:4], forged, *chain[4:]])
    report = verify_chain(tampered)
    assert (report.problem, report.first_bad_seq) == (ChainProblem.INSERTED, 5)


def test_inserted_event_with_a_garbage_hash_is_caught_as_inserted() -> None:
    chain = make_chain(10)
    entry = AuditEntry(action="request.approved", at=T0, actor="U-ATTACKER")
    forged = AuditEvent(5, entry, chain[3].hash, "f" * 64)
    report = verify_chain(renumber([*chain[:4], forged, *chain[4:]]))
    assert (report.problem, report.first_bad_seq) == (ChainProblem.INSERTED, 5)


def test_duplicate_sequence_number_is_caught() -> None:
    chain = make_chain(5)
    report = verify_chain([*chain[:3], chain[2], *chain[3:]])
    assert report.problem is ChainProblem.INSERTED


def test_anchors_catch_a_rewritten_or_truncated_tail() -> None:
    chain = make_chain(10)
    anchors = {10: chain[9].hash}
    assert verify_chain(chain, anchors=anchors).ok
    truncated = verify_chain(chain[:8], anchors=anchors)
    assert (truncated.problem, truncated.first_bad_seq) == (ChainProblem.MISSING, 9)
    rewritten = [
        *chain[:9],
        seal(replace(chain[9].entry, actor="X"), seq=10, prev_hash=chain[8].hash),
    ]
    assert verify_chain(rewritten, anchors=anchors).problem is ChainProblem.CHANGED


tampering = st.sampled_from(["change", "delete", "delete_renumber", "swap", "insert", "duplicate"])


@settings(max_examples=300, deadline=None)
@given(length=st.integers(min_value=2, max_value=40), how=tampering, data=st.data())
def test_every_random_tampering_is_caught(length: int, how: str, data: st.DataObject) -> None:
    """Whatever is done to whichever event, verification fails at or before that event."""
    chain = make_chain(length)
    at = data.draw(st.integers(min_value=0, max_value=length - 1))
    if how == "change":
        field = data.draw(st.sampled_from(["actor", "action", "data", "at", "request_id"]))
        changes: dict[str, Any] = {
            "actor": "U-ATTACKER",
            "action": "request.denied",
            "data": {"n": -1},
            "at": T0 - timedelta(days=1),
            "request_id": "R-OTHER",
        }
        chain[at] = replace(chain[at], entry=replace(chain[at].entry, **{field: changes[field]}))
    elif how in ("delete", "delete_renumber"):
        if at == length - 1:
            at -= 1  # cutting the tail needs an anchor; tested above
        del chain[at]
        if how == "delete_renumber":
            chain = renumber(chain)
    elif how == "swap":
        other = data.draw(st.integers(min_value=0, max_value=length - 1).filter(lambda n: n != at))
        chain[at], chain[other] = chain[other], chain[at]
        chain = renumber(chain)
    elif how == "insert":
        entry = AuditEntry(action="request.approved", at=T0, actor="U-ATTACKER")
        prev = chain[at - 1].hash if at else GENESIS_HASH
        chain = renumber([*chain[:at], seal(entry, seq=0, prev_hash=prev), *chain[at:]])
    else:
        chain.insert(at, chain[at])
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_bad_seq is not None and report.first_bad_seq <= at + 2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    action=st.text(),
    actor=st.none() | st.text(),
    incident_id=st.none() | st.text(),
    request_id=st.none() | st.text(),
    data=st.dictionaries(st.text(), json_values, max_size=4),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_assembled_canonical_form_equals_canonical_json_of_the_whole_event(
    action: str,
    actor: str | None,
    incident_id: str | None,
    request_id: str | None,
    data: dict[str, Any],
    at: datetime,
) -> None:
    entry = AuditEntry(action, at, actor, incident_id, request_id, data)
    whole = {
        "action": action,
        "actor": actor,
        "at": at.isoformat(timespec="microseconds"),
        "data": data,
        "incident_id": incident_id,
        "request_id": request_id,
    }
    assert entry.canonical() == canonical_json(whole)


def _rows(chain: list[AuditEvent]) -> list[tuple[int, str, str, bytes]]:
    return [(event.seq, event.prev_hash, event.hash, event.canonical()) for event in chain]


def test_rows_read_with_other_bytes_are_assembled_again_before_being_called_changed() -> None:
    chain = make_chain(6)
    rows = _rows(chain)
    rows[3] = (*rows[3][:3], rows[3][3].replace(b'"names"', b'"n\\u0061mes"'))
    asked: list[int] = []

    def recanonical(seq: int) -> bytes:
        asked.append(seq)
        return chain[seq - 1].canonical()

    assert verify_rows(rows, recanonical=recanonical).ok
    assert asked == [4]
    report = verify_rows(rows)
    assert (report.first_bad_seq, report.problem, report.checked) == (4, ChainProblem.CHANGED, 3)


def test_rows_and_events_get_the_same_report() -> None:
    chain = make_chain(8)
    cases = [
        chain,
        [*chain[:3], *chain[4:]],
        [*chain[:2], chain[3], chain[2], *chain[4:]],
        [*chain[:5], replace(chain[5], entry=replace(chain[5].entry, actor="U0EVIL")), *chain[6:]],
    ]
    for events in cases:
        anchors = {8: chain[-1].hash}
        assert verify_rows(_rows(events), anchors=anchors) == verify_chain(events, anchors=anchors)
