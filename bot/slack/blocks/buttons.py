"""Approve / Deny button pairs: on request cards, extension prompts and App Home."""

from typing import Any


def decision_buttons(
    *,
    value: str,
    block_id: str,
    approve_action: str,
    deny_action: str,
    approve_label: str = "Approve",
    deny_label: str = "Deny",
    confirm: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """An actions block; `confirm` is (approve question, deny question) for sensitive ones."""
    approve: dict[str, Any] = {
        "type": "button",
        "action_id": approve_action,
        "style": "primary",
        "text": {"type": "plain_text", "text": approve_label},
        "value": value,
    }
    deny: dict[str, Any] = {
        "type": "button",
        "action_id": deny_action,
        "style": "danger",
        "text": {"type": "plain_text", "text": deny_label},
        "value": value,
    }
    if confirm is not None:
        approve["confirm"] = _confirm(confirm[0], approve_label)
        deny["confirm"] = _confirm(confirm[1], deny_label)
    return {"type": "actions", "block_id": block_id, "elements": [approve, deny]}


def _confirm(question: str, verb: str) -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": "Are you sure?"},
        "text": {"type": "plain_text", "text": question[:300]},
        "confirm": {"type": "plain_text", "text": verb[:30]},
        "deny": {"type": "plain_text", "text": "Back"},
    }
