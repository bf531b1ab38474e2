"""On-call shifts: the PagerDuty on-call entry that puts a Slack user on call right now."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OnCallShift:
    """One on-call entry: who, for which escalation policy and level, from which schedule, when.

    `start` or `end` is None for a permanent on-call (PagerDuty's own convention).
    """

    user_id: str  # the Slack user
    pagerduty_user_id: str
    escalation_policy_id: str
    escalation_level: int
    schedule_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def describe(self) -> str:
        """`escalation policy PEP1 level 1 via schedule PSCH1, until 2026-11-23 18:00 UTC`."""
        parts = [f"escalation policy {self.escalation_policy_id} level {self.escalation_level}"]
        if self.schedule_id:
            parts.append(f"via schedule {self.schedule_id}")
        ends = f"until {self.end:%Y-%m-%d %H:%M} UTC" if self.end else "with no end"
        return f"{' '.join(parts)}, {ends}"
