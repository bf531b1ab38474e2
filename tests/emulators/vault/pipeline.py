"""One HTTP request through the core: parse, route, authenticate, authorize, run, wrap."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from . import spec, sys_routes, token_routes
from .common import JSON, Reply, Request, VaultError, permission_denied
from .core import UNAUTHENTICATED, Mount, VaultCore, json_bytes

Handler = Callable[[VaultCore, Request], Reply]
_OPERATIONS = {"GET": "read", "DELETE": "delete", "LIST": "list", "PUT": "update", "POST": "update"}


def error_body(error: VaultError) -> tuple[int, bytes]:
    return error.status, json_bytes({"errors": error.errors})


def handle(
    core: VaultCore, method: str, raw_path: str, query: Mapping[str, list[str]],
    headers: Mapping[str, str], raw_body: bytes,
) -> tuple[int, bytes]:  # fmt: skip
    """Status and body for one request to `/v1/<raw_path>`."""
    try:
        with core.lock:
            return _handle(core, method, raw_path, query, headers, raw_body)
    except VaultError as error:
        return error_body(error)


def _parse_body(raw_body: bytes, query: Mapping[str, list[str]], operation: str) -> JSON:
    body: JSON = {}
    if raw_body.strip():
        try:
            parsed = json.loads(raw_body)
        except ValueError as error:
            raise VaultError(400, f"failed to parse JSON input: {error}") from None
        if not isinstance(parsed, dict):
            raise VaultError(400, "failed to parse JSON input: not an object")
        body = parsed
    if operation in ("read", "list", "delete"):
        for key, values in query.items():
            if key != "list" and values:
                body.setdefault(key, values[0])
    return body


def _handle(
    core: VaultCore, method: str, raw_path: str, query: Mapping[str, list[str]],
    headers: Mapping[str, str], raw_body: bytes,
) -> tuple[int, bytes]:  # fmt: skip
    operation = _OPERATIONS.get(method)
    if operation is None:
        raise VaultError(405, "unsupported operation")
    if operation == "read" and query.get("list", [""])[0].lower() == "true":
        operation = "list"
    path = raw_path.lstrip("/")
    if operation == "list" and not path.endswith("/"):
        path += "/"
    route_path = path.rstrip("/") if operation != "list" else path
    body = _parse_body(raw_body, query, operation)
    now = core.clock.now()
    if route_path == "sys/health":
        if operation not in ("read",):
            raise VaultError(405, "unsupported operation")
        return 200, json_bytes(sys_routes.health(core, now))
    mount = core.mount_for(route_path.rstrip("/"))
    if mount is None:
        raise VaultError(404, f'no handler for route "{route_path}". route entry not found.')
    subpath = route_path[len(mount.path) :] if route_path.startswith(mount.path) else ""
    client_token = headers.get("x-vault-token") or _bearer(headers.get("authorization"))
    req = Request(operation, route_path, subpath, mount.path, body, {}, now)
    token = None
    if route_path == "sys/wrapping/unwrap" and not body.get("token"):
        token = None  # the wrapping token itself is the credential
    elif not _unauthenticated(route_path, mount.backend, subpath):
        token = core.lookup_token(client_token)
        if token is None:
            raise permission_denied()
        if operation == "update" and mount.type not in ("system", "token"):
            exists = mount.backend.exists(subpath)
            if exists is False:
                req.operation = "create"
        if not core.check_acl(token, route_path, req.operation):
            raise permission_denied()
        req.sudo = core.has_sudo(token, route_path)
    req.token = token
    warnings: list[str] = []
    if req.operation in ("create", "update") and body:
        warnings = spec.validate(route_path, mount.path, mount.type, body)
    limited = token is not None and token.num_uses > 0
    if token is not None and limited:
        token.num_uses -= 1
    wrap_ttl = core.parse_wrap_ttl(headers.get("x-vault-wrap-ttl"))
    try:
        reply = _dispatch(core, mount.type, req, client_token, wrap_ttl)
    finally:
        if token is not None and limited and token.num_uses == 0:
            core.revoke_token(token, cause="used")
    reply.warnings = warnings + reply.warnings
    if reply.warnings and reply.status == 204:
        reply.status = 200
    _finish(core, reply, mount, req)
    if reply.status == 204 or (reply.status == 202 and reply.raw is None and reply.data is None):
        return reply.status, b""
    body_bytes = (
        reply.raw if reply.raw is not None else json_bytes(core.envelope(reply, mount.type))
    )
    if wrap_ttl and reply.status == 200:
        info = core.wrap(body_bytes, wrap_ttl, route_path.rstrip("/"), reply.created_accessor)
        wrapped = core.envelope(Reply(), "")
        wrapped["wrap_info"] = info
        return 200, json_bytes(wrapped)
    return reply.status, body_bytes


def _bearer(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def _unauthenticated(path: str, backend: object, subpath: str) -> bool:
    if path in UNAUTHENTICATED:
        return True
    check = getattr(backend, "unauthenticated", None)
    return bool(check(subpath)) if check is not None else False


def _dispatch(
    core: VaultCore, mount_type: str, req: Request, client_token: str | None, wrap_ttl: int
) -> Reply:
    if mount_type == "system":
        return sys_routes.handle(core, req, client_token, wrap_ttl)
    if mount_type == "token":
        return token_routes.handle(core, req)
    mount = core.mounts[req.mount]
    reply: Reply = mount.backend.handle(req)
    return reply


def _finish(core: VaultCore, reply: Reply, mount: Mount, req: Request) -> None:
    """Register a secret's lease for the calling token, or issue a login's token."""
    if reply.secret is not None and req.token is not None:
        lease = core.leases.register(
            path=req.path,
            token_id=req.token.id,
            mount=mount.path,
            now=req.now,
            ttl=reply.secret.ttl,
            internal=reply.secret.internal,
        )
        reply.lease_id = lease.id
        reply.renewable = reply.secret.renewable
        reply.lease_duration = reply.secret.ttl
    if reply.login is not None:
        core.issue_login_token(reply, mount, req.now)
