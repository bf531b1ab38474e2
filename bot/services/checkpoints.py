"""Sign the audit chain's head now and then, so a re-hashed chain cannot pass for the real one."""

from datetime import datetime

from bot.domain.checkpoints import Checkpoint, CheckpointSigner, checkpoint_due
from bot.domain.ports import UnitOfWorkFactory


def sign_checkpoint(
    *, uow: UnitOfWorkFactory, signer: CheckpointSigner, now: datetime
) -> Checkpoint | None:
    """Sign (head seq, head hash, now) when 100 events or 60 s have passed since the last
    checkpoint, a heartbeat included. Returns the new checkpoint, or None when not due."""
    with uow() as tx:
        head = tx.audit.head()
        head_seq, head_hash = (head.seq, head.hash) if head else (0, "0" * 64)
        if not checkpoint_due(tx.checkpoints.last(), head_seq, now):
            return None
        unsigned = Checkpoint(head_seq, head_hash, now, signer.key_id)
        checkpoint = Checkpoint(
            head_seq, head_hash, now, signer.key_id, signer.sign(unsigned.message())
        )
        tx.checkpoints.add(checkpoint)
        tx.commit()
    return checkpoint
