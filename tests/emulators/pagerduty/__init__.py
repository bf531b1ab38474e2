"""A PagerDuty REST API emulator for tests: `GET /oncalls` and `GET /users`, checked against
our contract of PagerDuty's REST API (in `tests/specs/`; see docs/architecture.md)."""

from .emulator import DEFAULT_TOKEN, Call, PagerDutyEmulator, new_id, running_pagerduty

__all__ = ["DEFAULT_TOKEN", "Call", "PagerDutyEmulator", "new_id", "running_pagerduty"]
