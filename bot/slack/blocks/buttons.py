"""Approve / Deny button pairs: on request cards, extension prompts, approvers' tasks and
App Home, where the same words repeat once per request: each button says, to a screen reader,
which request it acts on (`accessibility_label`)."""

from typing import Any

# Slack's limit on a button's `accessibility_label`
# (https://docs.slack.dev/reference/block-kit/block-elements/button-element).
ACCESSIBILITY_LABEL_LIMIT = 75


def accessibility_label(verb: str, subject: str) -> str:
    """`Approve R-7K3QF2AB (feature-store-rw)`, cut to Slack's limit."""
    label = f"{verb} {subject}"
    if len(label) <= ACCESSIBILITY_LABEL_LIMIT:
        return label
    return label[: ACCESSIBILITY_LABEL_LIMIT - 1] + "…"


def decision_buttons(
    *,
    value: str,
    block_id: str,
    approve_action: str,
    deny_action: str,
    approve_label: str = "Approve",
    deny_label: str = "Deny",
    confirm: tuple[str, str] | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """An actions block; `confirm` is (approve question, deny question) for sensitive ones;
    `subject` (what the buttons act on, `R-… (resource)`; the value by default) is read out
    with each button's words."""
    about = subject or value
    approve: dict[str, Any] = {
        "type": "button",
        "action_id": approve_action,
        "style": "primary",
        "text": {"type": "plain_text", "text": approve_label},
        "value": value,
        "accessibility_label": accessibility_label(approve_label, about),
    }
    deny: dict[str, Any] = {
        "type": "button",
        "action_id": deny_action,
        "style": "danger",
        "text": {"type": "plain_text", "text": deny_label},
        "value": value,
        "accessibility_label": accessibility_label(deny_label, about),
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
