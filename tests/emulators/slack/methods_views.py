"""views.*: open, push, update, publish. trigger_ids are single-use and live 3 seconds."""

from __future__ import annotations

import json
import re
from typing import Any

from .blocks import check_view, normalize
from .common import JSON, ApiError, Ctx, Handler, invalid_arguments, missing_field, new_id
from .state import TRIGGER_TTL, View

MAX_VIEW_BYTES = 250_000
MAX_STACK = 3
_TRIGGER_FORMAT = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")


def _parse_view(ctx: Ctx, allowed: tuple[str, ...]) -> JSON:
    raw: Any = ctx.args.get("view")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise invalid_arguments("[ERROR] must provide an object [json-pointer:/view]") from None
    problems = check_view(raw, allowed)
    if problems:
        raise invalid_arguments(*problems)
    view: JSON = dict(raw)
    if len(json.dumps(view)) > MAX_VIEW_BYTES:
        raise ApiError("view_too_large")
    view["blocks"] = normalize(view.get("blocks", []))
    for key in ("title", "close", "submit"):
        if isinstance(view.get(key), dict):
            view[key] = dict(view[key])
            view[key].setdefault("emoji", True)
    return view


def _check_external_id(ctx: Ctx, view: JSON, keep: str | None = None) -> str:
    external_id = str(view.get("external_id") or "")
    if external_id:
        for existing in ctx.workspace.views.values():
            if existing.external_id == external_id and existing.id != keep and not existing.closed:
                raise ApiError("duplicate_external_id")
    return external_id


def _take_trigger(ctx: Ctx) -> tuple[str, str | None]:
    """Exchange the trigger_id (or interactivity_pointer): its user, and its modal if any."""
    ws = ctx.workspace
    trigger_id = ctx.str_arg("trigger_id") or ctx.str_arg("interactivity_pointer")
    if trigger_id is None:
        raise invalid_arguments(missing_field("trigger_id"))
    trigger = ws.triggers.get(trigger_id)
    if trigger is None or not _TRIGGER_FORMAT.match(trigger_id):
        raise ApiError("invalid_trigger_id")
    if trigger.used:
        raise ApiError("exchanged_trigger_id")
    if ws.clock.now() - trigger.issued_at > TRIGGER_TTL:
        raise ApiError("expired_trigger_id")
    trigger.used = True
    return trigger.user_id, trigger.view_id


def _view_out(ctx: Ctx, view: View) -> JSON:
    return {"ok": True, "view": view.to_api(ctx.workspace.app_id, ctx.workspace.bot_id)}


def open_(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    body = _parse_view(ctx, ("modal",))
    external_id = _check_external_id(ctx, body)
    user_id, _ = _take_trigger(ctx)
    for existing in ws.views.values():  # a new modal replaces the user's open stack
        if existing.user_id == user_id and existing.type == "modal":
            existing.closed = True
    view_id = new_id("V")
    view = View(
        id=view_id,
        team_id=ws.team_id,
        user_id=user_id,
        type="modal",
        body=body,
        hash=ws.new_view_hash(),
        root_view_id=view_id,
        external_id=external_id,
    )
    ws.views[view_id] = view
    return _view_out(ctx, view)


def push(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    body = _parse_view(ctx, ("modal",))
    external_id = _check_external_id(ctx, body)
    user_id, from_view = _take_trigger(ctx)
    stack = [
        v for v in ws.views.values() if v.user_id == user_id and v.type == "modal" and not v.closed
    ]
    if not stack:
        raise ApiError("not_found")
    if len(stack) >= MAX_STACK:
        raise ApiError("push_limit_reached")
    top = ws.views.get(from_view) if from_view else stack[-1]
    previous = top if top is not None and not top.closed else stack[-1]
    view_id = new_id("V")
    view = View(
        id=view_id,
        team_id=ws.team_id,
        user_id=user_id,
        type="modal",
        body=body,
        hash=ws.new_view_hash(),
        root_view_id=previous.root_view_id,
        previous_view_id=previous.id,
        external_id=external_id,
    )
    ws.views[view_id] = view
    return _view_out(ctx, view)


def update(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    view_id = ctx.str_arg("view_id")
    external_id = ctx.str_arg("external_id")
    if view_id is None and external_id is None:
        raise invalid_arguments(missing_field("view_id"))
    if view_id is not None:
        view = ws.views.get(view_id) or next(
            (v for v in ws.home_tabs.values() if v.id == view_id), None
        )
    else:
        view = next((v for v in ws.views.values() if v.external_id == external_id), None)
    if view is None or view.closed:
        raise ApiError("not_found")
    body = _parse_view(ctx, (view.type,))
    new_external = _check_external_id(ctx, body, keep=view.id)
    expected = ctx.str_arg("hash")
    if expected is not None and expected != view.hash:
        raise ApiError("hash_conflict")
    view.body = body
    view.external_id = new_external or view.external_id
    view.hash = ws.new_view_hash()
    return _view_out(ctx, view)


def publish(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    user_id = ctx.require_str("user_id")
    body = _parse_view(ctx, ("home",))
    if user_id not in ws.users:
        raise invalid_arguments("[ERROR] invalid user_id [json-pointer:/user_id]")
    current = ws.home_tabs.get(user_id)
    expected = ctx.str_arg("hash")
    if current is not None and expected is not None and expected != current.hash:
        raise ApiError("hash_conflict")
    view_id = current.id if current is not None else new_id("V")
    view = View(
        id=view_id,
        team_id=ws.team_id,
        user_id=user_id,
        type="home",
        body=body,
        hash=ws.new_view_hash(),
        root_view_id=view_id,
        external_id=str(body.get("external_id") or ""),
    )
    ws.home_tabs[user_id] = view
    return _view_out(ctx, view)


HANDLERS: dict[str, Handler] = {
    "views.open": open_,
    "views.push": push,
    "views.update": update,
    "views.publish": publish,
}
