"""What the audit export tests share: a clock they move, events produced one per transaction,
and the order a sink must receive them in."""

from datetime import datetime, timedelta

from bot.domain import events
from bot.domain.ports import UnitOfWorkFactory


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def produce(uow: UnitOfWorkFactory, count: int, clock: Clock) -> None:
    """`count` audit events, one transaction each and a second apart, as the bot writes them."""
    for _ in range(count):
        clock.advance(seconds=1)
        with uow() as tx:
            head = tx.audit.head()
            number = head.seq + 1 if head else 1
            tx.audit.append(
                events.RequestFiled(at=clock(), actor="U0ONCALL1", reason=f"event {number}")
            )
            tx.commit()


def expected_ids(events: int, checkpoints: dict[int, int] | None = None) -> list[str]:
    """`event-1`... `event-<events>`, with `checkpoint-<n>` right after the event it covers
    (`checkpoints` maps the covered event's seq to the checkpoint's number)."""
    after = checkpoints or {}
    ids: list[str] = []
    for seq in range(1, events + 1):
        ids.append(f"event-{seq}")
        if seq in after:
            ids.append(f"checkpoint-{after[seq]}")
    return ids
