"""Signed checkpoints of the audit chain: (sequence, head hash, time), signed with Ed25519.

A hash chain alone cannot stop someone with write access from editing an event and re-hashing
everything after it. A checkpoint signed with a key that person lacks can: verification anchors
the chain at every checkpoint whose signature holds, so a re-hashed chain no longer matches.
Events after the last checkpoint are the unanchored tail, reported as such.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.audit import canonical_json, utc_iso

CHECKPOINT_EVERY = timedelta(seconds=60)
CHECKPOINT_EVENTS = 100


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    at: datetime
    key_id: str
    signature: str = ""  # hex

    def message(self) -> bytes:
        """The signed bytes: everything but the signature, canonically."""
        return canonical_json(
            {
                "seq": self.seq,
                "head_hash": self.head_hash,
                "at": utc_iso(self.at),
                "key_id": self.key_id,
            }
        )


class CheckpointSigner(Protocol):
    @property
    def key_id(self) -> str: ...
    def sign(self, message: bytes) -> str: ...


class SignatureCheck(Protocol):
    def __call__(self, message: bytes, signature: str) -> bool: ...


def checkpoint_due(
    last: Checkpoint | None, head_seq: int, now: datetime,
    *, every: timedelta = CHECKPOINT_EVERY, events: int = CHECKPOINT_EVENTS,
) -> bool:  # fmt: skip
    """Every `events` events or every `every`, whichever first; a heartbeat when idle."""
    if last is None:
        return True
    return head_seq - last.seq >= events or now - last.at >= every


@dataclass(frozen=True)
class CheckpointReport:
    anchors: dict[int, str]  # seq -> witnessed head hash, from checkpoints that verify
    forged: list[Checkpoint]  # checkpoints whose signature does not hold
    last_anchored_seq: int


def check_signatures(checkpoints: Iterable[Checkpoint], verify: SignatureCheck) -> CheckpointReport:
    anchors: dict[int, str] = {}
    forged: list[Checkpoint] = []
    for checkpoint in checkpoints:
        if verify(checkpoint.message(), checkpoint.signature):
            anchors[checkpoint.seq] = checkpoint.head_hash
        else:
            forged.append(checkpoint)
    return CheckpointReport(anchors, forged, max(anchors, default=0))


def unanchored_tail(report: CheckpointReport, head_seq: int) -> Sequence[int]:
    """The sequence numbers no signed checkpoint covers yet."""
    return range(report.last_anchored_seq + 1, head_seq + 1)
