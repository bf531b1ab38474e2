"""The `sys/` backend: health, policies, mounts, capabilities, leases and response wrapping."""

from __future__ import annotations

from .common import JSON, Reply, Request, VaultError, as_str_list, bad_request, not_found
from .core import VaultCore
from .leases import Lease

VERSION = "1.15.6"


def health(core: VaultCore, now: float) -> JSON:
    return {
        "initialized": True,
        "sealed": False,
        "standby": False,
        "performance_standby": False,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(now),
        "version": VERSION,
        "enterprise": False,
        "cluster_name": core.cluster_name,
        "cluster_id": core.cluster_id,
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
    }


def _unsupported() -> VaultError:
    return VaultError(405, "unsupported operation")


def handle(core: VaultCore, req: Request, client_token: str | None, wrap_ttl: int) -> Reply:
    path, op = req.subpath, req.operation
    head, _, rest = path.partition("/")
    if path in ("capabilities-self", "capabilities", "capabilities-accessor"):
        return _capabilities(core, req, path)
    if head == "policies" and rest.startswith("acl"):
        return _policy(core, req, rest[4:], legacy=False)
    if head == "policy":
        return _policy(core, req, rest, legacy=True)
    if head in ("mounts", "auth"):
        return _mounts(core, req, rest, auth=head == "auth")
    if head == "leases" or path == "renew" or head in ("revoke", "revoke-prefix"):
        return _leases(core, req, path)
    if head == "wrapping":
        return _wrapping(core, req, rest, client_token, wrap_ttl)
    if op == "list" or path in ("seal-status", "leader"):
        raise VaultError(404, "unsupported path")
    raise VaultError(404, "unsupported path")


def _capabilities(core: VaultCore, req: Request, path: str) -> Reply:
    if req.operation not in ("update", "create"):
        raise _unsupported()
    body = req.body
    paths = as_str_list(body.get("paths")) or as_str_list(body.get("path"))
    if not paths:
        raise bad_request("paths must be supplied")
    token = req.token
    if path == "capabilities":
        token = core.lookup_token(str(body.get("token") or ""))
    elif path == "capabilities-accessor":
        token = core.tokens.find_by_accessor(str(body.get("accessor") or ""))
    if token is None:
        raise bad_request("invalid token")
    acl = core.policies.acl(token.policies)
    data: JSON = {p: acl.capabilities(p) for p in paths}
    if len(paths) == 1:
        data["capabilities"] = data[paths[0]]
    return Reply(data=data, top_level=True)


def _policy(core: VaultCore, req: Request, name: str, *, legacy: bool) -> Reply:
    op = req.operation
    if not name or op == "list":
        if op not in ("list", "read"):
            raise _unsupported()
        names = core.policies.names()
        data: JSON = {"keys": names, "policies": names} if legacy else {"keys": names}
        return Reply(data=data, top_level=legacy)
    name = name.strip("/").lower()
    if op == "read":
        policy = core.policies.get(name)
        if policy is None:
            raise not_found()
        if legacy:
            return Reply(data={"name": name, "rules": policy.text}, top_level=True)
        return Reply(data={"name": name, "policy": policy.text})
    if op == "delete":
        core.policies.delete(name)
        return Reply(status=204)
    text = req.body.get("policy") or (req.body.get("rules") if legacy else None)
    if not isinstance(text, str) or not text.strip():
        raise bad_request("'policy' parameter not supplied or empty")
    core.policies.put(name, text)
    return Reply(status=204)


def _mounts(core: VaultCore, req: Request, rest: str, *, auth: bool) -> Reply:
    op = req.operation
    prefix = "auth/" if auth else ""
    if not rest:
        if op != "read":
            raise _unsupported()
        data: JSON = {}
        for path, mount in sorted(core.mounts.items()):
            if path.startswith("auth/") == auth:
                data[path[len(prefix) :]] = mount.entry()
        return Reply(data=data, top_level=True)
    full = prefix + rest.strip("/") + "/"
    if op == "read":
        found = core.mounts.get(full)
        if found is None:
            raise bad_request(f"No {'auth' if auth else 'secret'} engine mount at {rest}/")
        return Reply(data=found.entry())
    if op == "delete":
        core.disable(full)
        return Reply(status=204)
    if op in ("create", "update"):
        core.enable(rest, req.body, auth=auth)
        return Reply(status=204)
    raise _unsupported()


def _lease_id(req: Request, url_part: str) -> str:
    lease_id = str(req.body.get("lease_id") or url_part or "")
    if not lease_id:
        raise bad_request("lease_id must be specified")
    return lease_id


def _leases(core: VaultCore, req: Request, path: str) -> Reply:
    op, now = req.operation, req.now
    path = path.removeprefix("leases/") if path.startswith("leases/") else path
    if path.startswith("lookup") and op == "list":
        keys = core.leases.list_keys(path[len("lookup/") :])
        if not keys:
            raise not_found()
        return Reply(data={"keys": keys})
    if op not in ("update", "create"):
        raise _unsupported()
    verb, _, url_part = path.partition("/")
    if verb == "lookup" and not url_part:
        lease = core.leases.get(_lease_id(req, ""))
        if lease is None:
            raise bad_request("invalid lease")
        return Reply(data=lease.lookup_data(now))
    if verb == "renew":
        return _renew(core, req, _lease_id(req, url_part))
    if verb == "revoke":
        lease_id = _lease_id(req, url_part)
        lease = core.leases.get(lease_id)
        caller = req.token.accessor if req.token is not None else None
        if lease is not None:
            core.revoke_lease(lease, force=False, caller=caller)
        else:
            core.record_revocation(lease_id, "request", caller, found=False)
        sync = req.body.get("sync", True)
        return Reply(status=204 if sync not in (False, "false") else 202)
    if verb in ("revoke-prefix", "revoke-force"):
        prefix = url_part or str(req.body.get("prefix") or "")
        if not prefix:
            raise bad_request("prefix must be specified")
        for lease in core.leases.under(prefix):
            core.revoke_lease(lease, force=verb == "revoke-force")
        return Reply(status=204)
    raise VaultError(404, "unsupported path")


def _renew(core: VaultCore, req: Request, lease_id: str) -> Reply:
    from .common import parse_duration

    lease: Lease | None = core.leases.get(lease_id)
    if lease is None:
        raise bad_request("lease not found")
    now = req.now
    if lease.expire_time <= now:
        raise bad_request("lease expired")
    if not lease.renewable:
        raise bad_request("lease is not renewable")
    owner = core.tokens.tokens.get(lease.token_id)
    token_left = None
    if owner is not None and owner.expire_time is not None:
        token_left = max(0, round(owner.expire_time - now))
    mount = core.mounts.get(lease.mount)
    if mount is None or not hasattr(mount.backend, "renew_secret"):
        raise bad_request("lease is not renewable")
    increment = parse_duration(req.body.get("increment"), "increment")
    try:
        ttl, warnings = mount.backend.renew_secret(
            lease.internal, increment=increment, issue_time=lease.issue_time, now=now,
            token_left=token_left,
        )  # fmt: skip
    except VaultError:
        raise
    except Exception as error:
        raise bad_request(f"failed to renew entry: {error}") from None
    lease.expire_time = now + ttl
    lease.last_renewal = now
    return Reply(lease_id=lease.id, renewable=True, lease_duration=ttl, warnings=warnings)


def _wrapping(
    core: VaultCore, req: Request, verb: str, client_token: str | None, wrap_ttl: int
) -> Reply:
    if req.operation not in ("update", "create") and not (
        verb == "lookup" and req.operation == "read"
    ):
        raise _unsupported()
    if verb == "wrap":
        if not wrap_ttl:
            raise bad_request("endpoint requires response wrapping to be used")
        return Reply(data=dict(req.body))
    if verb in ("unwrap", "lookup"):
        token_id = str(req.body.get("token") or client_token or "")
        token = core.wrapping_token(token_id)
        if verb == "lookup":
            return Reply(
                data={
                    "creation_path": token.wrap_creation_path,
                    "creation_time": _rfc(token.creation_time),
                    "creation_ttl": token.ttl,
                }
            )
        raw = token.wrapped_response
        core.tokens.remove(token)
        return Reply(raw=raw)
    raise VaultError(404, "unsupported path")


def _rfc(timestamp: float) -> str:
    from .common import rfc3339_nano

    return rfc3339_nano(timestamp)
