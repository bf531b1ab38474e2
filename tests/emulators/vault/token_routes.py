"""The `auth/token/` backend: create, roles, lookup, renew and revoke."""

from __future__ import annotations

from .common import Reply, Request, VaultError, bad_request, not_found, parse_duration
from .core import VaultCore
from .token_roles import TokenRole
from .tokens import CreateOptions, Token


def _unsupported() -> VaultError:
    return VaultError(405, "unsupported operation")


def _writes(req: Request) -> None:
    if req.operation not in ("create", "update"):
        raise _unsupported()


def handle(core: VaultCore, req: Request) -> Reply:
    path, op = req.subpath, req.operation
    head, _, rest = path.partition("/")
    caller: Token = req.token
    if head == "roles":
        return _roles(core, req, rest.strip("/"))
    if head == "accessors" and not rest:
        if op != "list":
            raise _unsupported()
        keys = sorted(core.tokens.by_accessor)
        return Reply(data={"keys": keys})
    if head in ("create", "create-orphan"):
        _writes(req)
        role = None
        if rest:
            role = core.tokens.roles.get(rest)
            if role is None:
                raise bad_request(f"unknown role {rest}")
        options = CreateOptions(
            parent=caller,
            privileged=req.sudo,
            path=req.path,
            role=role,
            force_orphan=head == "create-orphan",
        )
        token, warnings = core.tokens.create(req.body, options, req.now)
        return Reply(
            auth=token.auth_block(req.now), warnings=warnings, created_accessor=token.accessor
        )
    if rest:
        raise VaultError(404, "unsupported path")
    if head in ("lookup-self", "lookup", "lookup-accessor"):
        if op not in ("read", "update", "create"):
            raise _unsupported()
        target, hide = _target(core, req, head, caller, missing="bad token")
        return Reply(data=target.lookup_data(req.now, hide_id=hide))
    if head in ("renew-self", "renew", "renew-accessor"):
        _writes(req)
        target, _ = _target(core, req, head, caller, missing="token not found")
        increment = parse_duration(req.body.get("increment"), "increment")
        warnings = core.tokens.renew(target, increment, req.now)
        return Reply(auth=target.auth_block(req.now), warnings=warnings)
    if head in ("revoke-self", "revoke", "revoke-accessor", "revoke-orphan"):
        _writes(req)
        if head == "revoke" and not req.body.get("token"):
            raise bad_request("missing token")
        try:
            target, _ = _target(core, req, head, caller, missing="")
        except VaultError as error:
            asked = str(req.body.get("accessor") or "") if head == "revoke-accessor" else ""
            core.record_revocation(
                asked or "<unknown token>", "request", caller.accessor, found=False
            )
            if head in ("revoke", "revoke-orphan") and error.status in (400, 403):
                return Reply(status=204)
            raise
        core.revoke_token(target, orphan_children=head == "revoke-orphan", caller=caller.accessor)
        return Reply(status=204)
    raise VaultError(404, "unsupported path")


def _target(
    core: VaultCore, req: Request, head: str, caller: Token, *, missing: str
) -> tuple[Token, bool]:
    """The token an endpoint acts on, and whether its id must be hidden (accessor lookups)."""
    if head.endswith("-self"):
        return caller, False
    if head.endswith("-accessor"):
        accessor = str(req.body.get("accessor") or "")
        if not accessor:
            raise bad_request("missing accessor")
        target = core.tokens.find_by_accessor(accessor)
        if target is not None:
            target = core.lookup_token(target.id)
        if target is None:
            raise bad_request("invalid accessor")
        return target, True
    token_id = str(req.body.get("token") or "")
    if not token_id:
        if head == "lookup":
            return caller, False
        raise bad_request("missing token")
    target = core.lookup_token(token_id)
    if target is None:
        if head == "lookup":
            raise VaultError(403, "bad token")
        raise bad_request(missing or "invalid token")
    return target, False


def _roles(core: VaultCore, req: Request, name: str) -> Reply:
    op = req.operation
    roles = core.tokens.roles
    if not name or op == "list":
        if op != "list":
            raise _unsupported()
        if not roles:
            raise not_found()
        return Reply(data={"keys": sorted(roles)})
    if op == "read":
        role = roles.get(name)
        if role is None:
            raise not_found()
        return Reply(data=role.read_data())
    if op == "delete":
        roles.pop(name, None)
        return Reply(status=204)
    _writes(req)
    role = roles.get(name) or TokenRole(name=name)
    updated = TokenRole(**vars(role))
    updated.update(req.body)
    roles[name] = updated
    return Reply(status=204)
