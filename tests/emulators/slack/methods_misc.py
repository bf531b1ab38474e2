"""auth.test, users.*, usergroups.*, and the external file upload flow (files.*)."""

from __future__ import annotations

from .access import writable_channel
from .common import JSON, ApiError, Ctx, Handler, invalid_arguments, new_id, split_list
from .state import Message, UploadedFile

MAX_UPLOAD = 1024 * 1024 * 1024  # 1 GB


def auth_test(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    return {
        "ok": True,
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": ws.team_name,
        "user": ws.bot_name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "app_id": ws.app_id,
        "is_enterprise_install": False,
    }


def users_info(ctx: Ctx) -> JSON:
    user = ctx.workspace.users.get(ctx.require_str("user"))
    if user is None:
        raise ApiError("user_not_found")
    out = user.to_api()
    if ctx.bool_arg("include_locale"):
        out["locale"] = "en-US"
    return {"ok": True, "user": out}


def users_lookup_by_email(ctx: Ctx) -> JSON:
    email = ctx.require_str("email").lower()
    for user in ctx.workspace.users.values():
        if user.email and user.email.lower() == email and not user.deleted:
            return {"ok": True, "user": user.to_api()}
    raise ApiError("users_not_found")


def users_list(ctx: Ctx) -> JSON:
    members = [u.to_api() for u in ctx.workspace.users.values()]
    return {
        "ok": True,
        "members": members,
        "cache_ts": ctx.workspace.now(),
        "response_metadata": {"next_cursor": ""},
    }


def usergroups_users_list(ctx: Ctx) -> JSON:
    group = ctx.workspace.usergroups.get(ctx.require_str("usergroup"))
    if group is None or (group.disabled and not ctx.bool_arg("include_disabled")):
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(group.users)}


def usergroups_list(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    include_users = ctx.bool_arg("include_users")
    groups = []
    for group in ws.usergroups.values():
        if group.disabled and not ctx.bool_arg("include_disabled"):
            continue
        item: JSON = {
            "id": group.id,
            "team_id": ws.team_id,
            "is_usergroup": True,
            "name": group.name,
            "handle": group.handle,
            "description": "",
            "is_external": False,
            "date_delete": 0,
            "auto_type": None,
            "user_count": len(group.users),
        }
        if include_users:
            item["users"] = list(group.users)
        groups.append(item)
    return {"ok": True, "usergroups": groups}


def files_get_upload_url(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    length = int(float(ctx.require_str("length")))
    if length > MAX_UPLOAD:
        raise ApiError("file_upload_size_restricted")
    alt_txt = ctx.str_arg("alt_txt")
    if alt_txt is not None and len(alt_txt) > 1000:
        raise ApiError("alt_txt_too_large")
    file = UploadedFile(
        id=new_id("F"),
        filename=ctx.require_str("filename"),
        length=length,
        user=ws.bot_user_id,
        created=ws.now(),
        alt_txt=alt_txt,
        snippet_type=ctx.str_arg("snippet_type"),
    )
    ws.files[file.id] = file
    return {"ok": True, "upload_url": f"{ctx.base_url}/upload/v1/{file.id}", "file_id": file.id}


def files_complete_upload(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    files = ctx.json_arg("files")
    if not isinstance(files, list) or not files:
        raise invalid_arguments("[ERROR] must provide at least 1 items [json-pointer:/files]")
    chosen: list[tuple[UploadedFile, str | None]] = []
    for item in files:
        file = ws.files.get(str(item.get("id"))) if isinstance(item, dict) else None
        if file is None or file.content is None or file.completed:
            raise ApiError("file_not_found")
        chosen.append((file, item.get("title")))
    channel_ids = split_list(ctx.str_arg("channel_id") or "")
    channel_ids += split_list(ctx.str_arg("channels") or "")
    channels = [writable_channel(ctx, channel_id) for channel_id in channel_ids]
    thread_ts = ctx.str_arg("thread_ts")
    for file, title in chosen:
        file.completed = True
        file.title = title or file.filename
        file.channels = [c.id for c in channels]
    shared = [file.to_api(ws.team_id, ctx.base_url) for file, _ in chosen]
    for channel in channels:
        channel.history.append(
            Message(
                ts=ws.next_ts(),
                channel=channel.id,
                user=ws.bot_user_id,
                text=ctx.str_arg("initial_comment") or "",
                files=shared,
                thread_ts=thread_ts,
                bot_id=ws.bot_id,
                app_id=ws.app_id,
            )
        )
    summary = [{"id": f["id"], "title": f["title"]} for f in shared]
    return {"ok": True, "files": summary}


def files_info(ctx: Ctx) -> JSON:
    ws = ctx.workspace
    file = ws.files.get(ctx.require_str("file"))
    if file is None or not file.completed:
        raise ApiError("file_not_found")
    return {
        "ok": True,
        "file": file.to_api(ws.team_id, ctx.base_url),
        "comments": [],
        "response_metadata": {"next_cursor": ""},
    }


HANDLERS: dict[str, Handler] = {
    "auth.test": auth_test,
    "users.info": users_info,
    "users.lookupByEmail": users_lookup_by_email,
    "users.list": users_list,
    "usergroups.users.list": usergroups_users_list,
    "usergroups.list": usergroups_list,
    "files.getUploadURLExternal": files_get_upload_url,
    "files.completeUploadExternal": files_complete_upload,
    "files.info": files_info,
}
