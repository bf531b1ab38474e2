"""A PagerDuty REST API emulator for tests: `GET /oncalls` and `GET /users`, checked against
the PagerDuty contract written from PagerDuty's REST API reference
(`tests/specs/pagerduty/contract.yaml`)."""

from .emulator import DEFAULT_TOKEN, Call, PagerDutyEmulator, new_id, running_pagerduty

__all__ = ["DEFAULT_TOKEN", "Call", "PagerDutyEmulator", "new_id", "running_pagerduty"]
