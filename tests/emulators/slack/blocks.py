"""Block Kit checks: the limits Slack enforces on messages, modals and Home tabs.

Limits come from Slack's Block Kit reference (https://docs.slack.dev/reference/block-kit/blocks)
and slack_sdk's validators (`slack_sdk/models/blocks/`).
Each problem is reported in Slack's `response_metadata.messages` style:
`[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]`.
Slack also fills in what the caller left out: a `block_id` on every block, an `action_id` on
every interactive element and `emoji: true` on plain_text objects; `normalize` does the same.
"""

from __future__ import annotations

import copy
from typing import Any

from .block_kit import (
    BLOCK_KEYS,
    COMMON_ELEMENT,
    CONFIRM_KEYS,
    ELEMENT_KEYS,
    INPUTS,
    INTERACTIVE,
    MULTI_SELECTS,
    SELECT_EXTRA,
    SELECTS,
    TEXT_TYPES,
    VIEW_KEYS,
)
from .common import JSON, random_token

MESSAGE_BLOCKS = 50
SURFACE_BLOCKS = 100


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def err(self, path: str, text: str) -> None:
        self.problems.append(f"[ERROR] {text} [json-pointer:{path}]")

    def max_len(self, path: str, value: Any, limit: int) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.err(path, f"must be less than {limit + 1} characters")

    def string(self, obj: JSON, key: str, path: str, limit: int, *, required: bool = False) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self.err(path, f"missing required field: {key}")
            return
        if not isinstance(value, str):
            self.err(f"{path}/{key}", "must provide a string")
            return
        if required and not value:
            self.err(f"{path}/{key}", "must be more than 0 characters")
        self.max_len(f"{path}/{key}", value, limit)

    def extra_keys(self, obj: JSON, allowed: set[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.err(path, f"invalid additional property: {key}")

    def text(
        self,
        obj: JSON,
        key: str,
        path: str,
        limit: int,
        *,
        plain_only: bool = False,
        required: bool = False,
    ) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self.err(path, f"missing required field: {key}")
            return
        self.text_object(value, f"{path}/{key}", limit, plain_only=plain_only)

    def text_object(self, value: Any, where: str, limit: int, *, plain_only: bool = False) -> None:
        if not isinstance(value, dict):
            self.err(where, "must provide an object")
            return
        kind = value.get("type")
        allowed = ("plain_text",) if plain_only else TEXT_TYPES
        if kind not in allowed:
            self.err(where, "failed to match all allowed schemas")
            return
        extra = {"emoji"} if kind == "plain_text" else {"verbatim"}
        self.extra_keys(value, {"type", "text"} | extra, where)
        text = value.get("text")
        if not isinstance(text, str):
            self.err(where, "missing required field: text")
        elif not text:
            self.err(f"{where}/text", "must be more than 0 characters")
        else:
            self.max_len(f"{where}/text", text, limit)

    def items(self, obj: JSON, key: str, path: str, low: int, high: int) -> list[Any]:
        value = obj.get(key)
        if not isinstance(value, list):
            self.err(path, f"missing required field: {key}")
            return []
        if len(value) > high:
            self.err(f"{path}/{key}", f"no more than {high} items allowed")
        elif len(value) < low:
            self.err(f"{path}/{key}", f"must provide at least {low} items")
        return value

    def confirm(self, element: JSON, path: str) -> None:
        confirm = element.get("confirm")
        if not isinstance(confirm, dict):
            return
        where = f"{path}/confirm"
        self.extra_keys(confirm, CONFIRM_KEYS, where)
        self.text(confirm, "title", where, 100, plain_only=True, required=True)
        self.text(confirm, "text", where, 300, required=True)
        self.text(confirm, "confirm", where, 30, plain_only=True, required=True)
        self.text(confirm, "deny", where, 30, plain_only=True, required=True)
        if "style" in confirm and confirm["style"] not in ("primary", "danger"):
            self.err(f"{where}/style", "must be a valid enum value")

    def option(self, option: Any, path: str, *, plain_only: bool) -> None:
        if not isinstance(option, dict):
            self.err(path, "must provide an object")
            return
        self.extra_keys(option, {"text", "value", "description", "url"}, path)
        self.text(option, "text", path, 75, plain_only=plain_only, required=True)
        self.string(option, "value", path, 150, required=True)
        self.text(option, "description", path, 75, plain_only=plain_only)
        self.string(option, "url", path, 3000)

    def options(self, element: JSON, path: str, high: int, *, plain_only: bool = True) -> None:
        if "option_groups" in element:
            if "options" in element:
                self.err(path, "must provide either options or option_groups, not both")
            for i, group in enumerate(self.items(element, "option_groups", path, 1, 100)):
                where = f"{path}/option_groups/{i}"
                if isinstance(group, dict):
                    self.text(group, "label", where, 75, plain_only=True, required=True)
                    for j, opt in enumerate(self.items(group, "options", where, 1, 100)):
                        self.option(opt, f"{where}/options/{j}", plain_only=True)
            return
        for i, opt in enumerate(self.items(element, "options", path, 1, high)):
            self.option(opt, f"{path}/options/{i}", plain_only=plain_only)

    def element(self, element: Any, path: str, allowed: set[str]) -> None:
        if not isinstance(element, dict):
            self.err(path, "must provide an object")
            return
        kind = element.get("type")
        if kind not in allowed:
            self.err(path, "failed to match all allowed schemas")
            return
        keys = COMMON_ELEMENT | ELEMENT_KEYS.get(kind, set())
        if kind in SELECTS or kind in MULTI_SELECTS:
            keys |= SELECT_EXTRA
        if kind == "image":
            keys = {"type"} | ELEMENT_KEYS["image"]
        self.extra_keys(element, keys, path)
        self.string(element, "action_id", path, 255)
        self.text(element, "placeholder", path, 150, plain_only=True)
        self.confirm(element, path)
        if kind == "button":
            self.text(element, "text", path, 75, plain_only=True, required=True)
            self.string(element, "value", path, 2000)
            self.string(element, "url", path, 3000)
            self.string(element, "accessibility_label", path, 75)
            if "style" in element and element["style"] not in ("primary", "danger"):
                self.err(f"{path}/style", "must be a valid enum value")
        elif kind == "image":
            if "slack_file" not in element:
                self.string(element, "image_url", path, 3000, required=True)
            self.string(element, "alt_text", path, 2000, required=True)
        elif kind == "overflow":
            self.options(element, path, 5)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(element, path, 10, plain_only=False)
        elif kind in ("static_select", "multi_static_select"):
            self.options(element, path, 100)
        elif kind == "plain_text_input":
            self.string(element, "initial_value", path, 3000)
            for key in ("min_length", "max_length"):
                value = element.get(key)
                if value is not None and (not isinstance(value, int) or not 0 <= value <= 3000):
                    self.err(f"{path}/{key}", "must be less than or equal to 3000")

    def block(self, block: Any, path: str, surface: str) -> None:
        if not isinstance(block, dict):
            self.err(path, "must provide an object")
            return
        kind = block.get("type")
        if kind not in BLOCK_KEYS or (kind == "markdown" and surface != "message"):
            self.err(path, "failed to match all allowed schemas")
            return
        self.extra_keys(block, {"type", "block_id"} | BLOCK_KEYS[kind], path)
        self.string(block, "block_id", path, 255)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.err(path, "must provide either text or fields")
            self.text(block, "text", path, 3000)
            if "fields" in block:
                for i, field in enumerate(self.items(block, "fields", path, 1, 10)):
                    self.text_object(field, f"{path}/fields/{i}", 2000)
            if "accessory" in block:
                accessory_types = (
                    INTERACTIVE
                    - {
                        "plain_text_input",
                        "rich_text_input",
                        "email_text_input",
                        "url_text_input",
                        "number_text_input",
                        "file_input",
                        "workflow_button",
                    }
                ) | {"image"}
                self.element(block["accessory"], f"{path}/accessory", accessory_types)
        elif kind == "header":
            self.text(block, "text", path, 150, plain_only=True, required=True)
        elif kind == "actions":
            for i, el in enumerate(self.items(block, "elements", path, 1, 25)):
                allowed = INTERACTIVE - {
                    "plain_text_input",
                    "email_text_input",
                    "url_text_input",
                    "number_text_input",
                    "file_input",
                }
                self.element(el, f"{path}/elements/{i}", allowed)
        elif kind == "context":
            for i, el in enumerate(self.items(block, "elements", path, 1, 10)):
                where = f"{path}/elements/{i}"
                if isinstance(el, dict) and el.get("type") in TEXT_TYPES:
                    self.text_object(el, where, 3000)
                else:
                    self.element(el, where, {"image"})
        elif kind == "input":
            self.text(block, "label", path, 2000, plain_only=True, required=True)
            self.text(block, "hint", path, 2000, plain_only=True)
            if "element" not in block:
                self.err(path, "missing required field: element")
            else:
                self.element(block["element"], f"{path}/element", INPUTS)
        elif kind == "image":
            if "slack_file" not in block:
                self.string(block, "image_url", path, 3000, required=True)
            self.string(block, "alt_text", path, 2000, required=True)
            self.text(block, "title", path, 2000, plain_only=True)
        elif kind == "markdown":
            self.string(block, "text", path, 12000, required=True)
        elif kind == "rich_text":
            self.items(block, "elements", path, 0, 1000)
        elif kind == "video":
            for key in ("alt_text", "thumbnail_url", "video_url"):
                self.string(block, key, path, 3000, required=True)
            self.text(block, "title", path, 200, plain_only=True, required=True)

    def blocks(self, blocks: Any, path: str, surface: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.err(path, "must provide an array")
            return
        if len(blocks) > limit:
            self.err(path, f"no more than {limit} items allowed")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{path}/{i}", surface)
            block_id = block.get("block_id") if isinstance(block, dict) else None
            if isinstance(block_id, str):
                if block_id in seen:
                    self.err(f"{path}/{i}/block_id", f"duplicate block_id: {block_id}")
                seen.add(block_id)


def check_message_blocks(blocks: Any, pointer: str = "/blocks") -> list[str]:
    checker = _Checker()
    checker.blocks(blocks, pointer, "message", MESSAGE_BLOCKS)
    return checker.problems


def check_view(view: Any, allowed_types: tuple[str, ...], pointer: str = "/view") -> list[str]:
    checker = _Checker()
    if not isinstance(view, dict):
        checker.err(pointer, "must provide an object")
        return checker.problems
    kind = view.get("type")
    if kind not in allowed_types:
        checker.err(
            f"{pointer}/type" if kind else pointer,
            "must be a valid enum value" if kind else "missing required field: type",
        )
        return checker.problems
    checker.extra_keys(view, VIEW_KEYS, pointer)
    modal = kind == "modal"
    checker.text(view, "title", pointer, 24, plain_only=True, required=modal)
    checker.text(view, "close", pointer, 24, plain_only=True)
    checker.text(view, "submit", pointer, 24, plain_only=True)
    checker.string(view, "private_metadata", pointer, 3000)
    checker.string(view, "callback_id", pointer, 255)
    checker.string(view, "external_id", pointer, 255)
    if "blocks" not in view:
        checker.err(pointer, "missing required field: blocks")
        return checker.problems
    checker.blocks(view["blocks"], f"{pointer}/blocks", kind, SURFACE_BLOCKS)
    blocks = view["blocks"] if isinstance(view["blocks"], list) else []
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if modal and has_input and "submit" not in view:
        checker.err(pointer, "missing required field: submit")
    return checker.problems


def normalize(blocks: list[Any]) -> list[JSON]:
    """A copy with what Slack adds: block_id, action_id and plain_text `emoji: true`."""
    out = copy.deepcopy(blocks)
    for block in out:
        if isinstance(block, dict):
            block.setdefault("block_id", random_token(5))
            _fill(block)
    return out


def _fill(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "plain_text" and "text" in node:
            node.setdefault("emoji", True)
        if node.get("type") in INTERACTIVE:
            node.setdefault("action_id", random_token(5))
        for value in node.values():
            _fill(value)
    elif isinstance(node, list):
        for item in node:
            _fill(item)
