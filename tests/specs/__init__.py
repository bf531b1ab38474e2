"""The protocol references the emulators and contract tests are checked against, kept here so a
clone of the repository has everything it needs.

- `slack/methods/`: Slack's own method JSON, one file per Web API method (MIT).
- `vault/openapi.json`: Vault's OpenAPI document, cut down to the paths the emulator serves
  (MPL-2.0).
- `pagerduty/contract.yaml`: this project's own summary of what it relies on in PagerDuty's REST
  API.

Each folder's README names the source, the license and why each file is here.
"""

from __future__ import annotations

from pathlib import Path

SPECS = Path(__file__).resolve().parent
REPO = SPECS.parents[1]


class SpecFilesMissing(RuntimeError):
    """An emulator's protocol reference is absent or unreadable. Raised when the emulator starts,
    never in the middle of a request; the message is one line that says where and what to do."""


def shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it, else as given."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
