"""A PagerDuty REST API emulator for tests: `GET /oncalls` and `GET /users`, checked against
PagerDuty's own OpenAPI document (`../shared/specs/pagerduty/rest_openapiv3.json`)."""

from .emulator import DEFAULT_TOKEN, Call, PagerDutyEmulator, new_id, running_pagerduty

__all__ = ["DEFAULT_TOKEN", "Call", "PagerDutyEmulator", "new_id", "running_pagerduty"]
