"""Signed checkpoints: when they are due, and that no tampering survives them."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.access import Verdict
from bot.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    chain_hash,
    next_in_chain,
    seal,
    verify_chain,
)
from bot.domain.checkpoints import Checkpoint, check_signatures, checkpoint_due, unanchored_tail
from bot.domain.errors import GatehouseError
from bot.domain.events import DomainEvent, IssueStarted
from bot.domain.incident import Severity
from bot.services import access, incidents, issuing
from bot.services.checkpoints import sign_checkpoint
from integrations.audit_signing import Ed25519Checker, Ed25519Signer, new_key
from tests.unit.example_policy import example_policy
from tests.unit.fakes import FakeBroker, MemoryAudit, MemoryStore

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PRIVATE, PUBLIC = new_key()
SIGNER, CHECKER = Ed25519Signer(PRIVATE), Ed25519Checker(PUBLIC)


def test_due_every_hundred_events_or_sixty_seconds_heartbeat_included() -> None:
    last = Checkpoint(10, "h", T0, "k", "s")
    assert checkpoint_due(None, 0, T0)
    assert not checkpoint_due(last, 109, T0 + timedelta(seconds=59))
    assert checkpoint_due(last, 110, T0 + timedelta(seconds=1))
    assert checkpoint_due(last, 10, T0 + timedelta(seconds=60))  # nothing happened: heartbeat


def test_the_service_signs_the_head_and_the_signature_verifies() -> None:
    store = MemoryStore()
    incidents.start_incident(
        uow=store,
        title="x",
        severity=Severity.SEV2,
        opened_by="U1",
        channel_id="C1",
        channel_name="inc-x",
        now=T0,
    )
    first = sign_checkpoint(uow=store, signer=SIGNER, now=T0)
    assert first is not None and first.seq == 1 and first.head_hash == store.state.events[0].hash
    assert sign_checkpoint(uow=store, signer=SIGNER, now=T0 + timedelta(seconds=5)) is None
    beat = sign_checkpoint(uow=store, signer=SIGNER, now=T0 + timedelta(seconds=61))
    assert beat is not None and beat.seq == 1
    assert CHECKER(first.message(), first.signature)
    assert not CHECKER(replace(first, seq=2).message(), first.signature)
    assert not Ed25519Checker(new_key()[1])(first.message(), first.signature)


def test_a_failed_audit_append_issues_nothing() -> None:
    """Fail closed: the intent to issue is recorded with its audit event or not at all."""
    store, broker, policy = MemoryStore(), FakeBroker(), example_policy()
    incidents.start_incident(
        uow=store,
        title="x",
        severity=Severity.SEV2,
        opened_by="U0ONCALL1",
        channel_id="C1",
        channel_name="inc-x",
        now=T0,
    )
    request = access.request_access(
        uow=store,
        policy=policy,
        channel_id="C1",
        requester_id="U0ONCALL2",
        resource="inference-logs-ro",
        duration=None,
        reason="x",
        now=T0,
    )
    access.decide_request(
        uow=store,
        request_id=request.id,
        approver_id="U0LEAD1",
        verdict=Verdict.APPROVE,
        reason=None,
        now=T0,
    )
    original = MemoryAudit.append

    def broken(self: MemoryAudit, event: DomainEvent) -> AuditEvent:
        if isinstance(event, IssueStarted):
            raise GatehouseError("the audit log is unavailable")
        return original(self, event)

    MemoryAudit.append = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(GatehouseError):
            issuing.issue_access(
                uow=store, policy=policy, broker=broker, request_id=request.id, clock=lambda: T0
            )
    finally:
        MemoryAudit.append = original  # type: ignore[method-assign]
    assert broker.issued == [] and store.state.grants == {}


def signed_chain(length: int, every: int) -> tuple[list[AuditEvent], list[Checkpoint]]:
    chain: list[AuditEvent] = []
    checkpoints: list[Checkpoint] = []
    for n in range(length):
        entry = AuditEntry(
            action="request.decided",
            at=T0 + timedelta(seconds=n),
            actor=f"U{n}",
            incident_id="INC-1",
            data={"n": n},
        )
        chain.append(next_in_chain(entry, chain[-1] if chain else None))
        if (n + 1) % every == 0 or n == length - 1:
            unsigned = Checkpoint(chain[-1].seq, chain[-1].hash, entry.at, SIGNER.key_id)
            checkpoints.append(replace(unsigned, signature=SIGNER.sign(unsigned.message())))
    return chain, checkpoints


def rehash_from(chain: list[AuditEvent], start: int) -> list[AuditEvent]:
    """What an attacker without the key can do: make every link after `start` consistent."""
    fixed = chain[:start]
    for event in chain[start:]:
        prev = fixed[-1].hash if fixed else GENESIS_HASH
        fixed.append(seal(event.entry, seq=len(fixed) + 1, prev_hash=prev))
    return fixed


def tamper(chain: list[AuditEvent], rng: random.Random) -> list[AuditEvent]:
    chain = list(chain)
    at = rng.randrange(len(chain))
    how = rng.choice(["edit", "edit-rehash", "delete", "insert", "reorder", "truncate"])
    if how in ("edit", "edit-rehash"):
        entry = replace(chain[at].entry, actor="U-ATTACKER", data={"n": -rng.randrange(1, 99)})
        chain[at] = replace(chain[at], entry=entry)
        return rehash_from(chain, at) if how == "edit-rehash" else chain
    if how == "delete":
        del chain[at]
        return rehash_from(chain, at) if rng.random() < 0.5 else chain
    if how == "insert":
        forged = AuditEntry(action="request.approved", at=T0, actor="U-ATTACKER")
        chain.insert(
            at, seal(forged, seq=at + 1, prev_hash=chain[at - 1].hash if at else GENESIS_HASH)
        )
        return rehash_from(chain, at)
    if how == "reorder":
        other = rng.randrange(len(chain))
        if other == at:
            other = (at + 1) % len(chain)
        chain[at], chain[other] = chain[other], chain[at]
        return rehash_from(chain, min(at, other))
    return chain[: max(0, at)]  # truncate


def test_six_thousand_random_tamperings_are_all_caught_with_the_signed_checkpoints() -> None:
    chain, checkpoints = signed_chain(60, every=10)
    signed = check_signatures(checkpoints, CHECKER)
    assert verify_chain(chain, anchors=signed.anchors).ok
    assert list(unanchored_tail(signed, len(chain))) == []
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    for attempt in range(6000):
        tampered = tamper(chain, rng)
        report = verify_chain(tampered, anchors=signed.anchors)
        assert not report.ok, f"tampering {attempt} with seed {seed} went unnoticed"


def test_rehashing_passes_the_bare_chain_but_not_the_checkpoints() -> None:
    chain, checkpoints = signed_chain(30, every=10)
    entry = replace(chain[4].entry, actor="U-ATTACKER")
    rewritten = rehash_from([*chain[:4], replace(chain[4], entry=entry), *chain[5:]], 4)
    assert verify_chain(rewritten).ok  # the chain alone cannot tell
    anchors = check_signatures(checkpoints, CHECKER).anchors
    assert not verify_chain(rewritten, anchors=anchors).ok
    forged = replace(checkpoints[0], head_hash=rewritten[9].hash)
    assert check_signatures([forged], CHECKER).forged == [forged]
    assert chain_hash(GENESIS_HASH, chain[0].entry.canonical()) == chain[0].hash
