"""The Kubernetes auth method, simplified: the JWT's claims are checked against the role.

With `pem_keys` configured, the JWT's RS256/ES256 signature is verified with those keys. Without
them the real Vault would call the TokenReview API; there is no cluster here, so the claims are
trusted as they are (the emulator's one shortcut, documented in the package docstring).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509 import load_pem_x509_certificate

from .common import (
    JSON,
    Reply,
    Request,
    VaultError,
    as_str_list,
    bad_request,
    login_from,
    not_found,
    permission_denied,
    read_or_delete,
    token_params,
    token_params_read,
)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def decode_jwt(jwt: str, pem_keys: list[str]) -> JSON:
    """The payload of a compact JWS; with keys, only if one of them verifies the signature."""
    try:
        header_b64, payload_b64, signature_b64 = jwt.split(".")
        header = json.loads(_b64(header_b64))
        payload: JSON = json.loads(_b64(payload_b64))
        signature = _b64(signature_b64)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise permission_denied() from None
    if not isinstance(payload, dict):
        raise permission_denied()
    if pem_keys and not _verified(
        header, f"{header_b64}.{payload_b64}".encode(), signature, pem_keys
    ):
        raise permission_denied()
    return payload


def _verified(header: JSON, signed: bytes, signature: bytes, pem_keys: list[str]) -> bool:
    algorithm = header.get("alg")
    for pem in pem_keys:
        try:
            key = _public_key(pem)
            if algorithm == "RS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
                return True
            if algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
                if len(signature) != 64:
                    continue
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
                return True
        except (InvalidSignature, ValueError):
            continue
    return False


def _public_key(pem: str) -> object:
    """A PEM public key, or the key of a PEM certificate (Vault accepts both)."""
    if "CERTIFICATE" in pem:
        return load_pem_x509_certificate(pem.encode()).public_key()
    return load_pem_public_key(pem.encode())


def service_account(claims: JSON) -> tuple[str, str, str]:
    """(namespace, name, uid) from legacy, projected or `sub` claims."""
    namespace = claims.get("kubernetes.io/serviceaccount/namespace")
    name = claims.get("kubernetes.io/serviceaccount/service-account.name")
    uid = claims.get("kubernetes.io/serviceaccount/service-account.uid", "")
    projected = claims.get("kubernetes.io")
    if isinstance(projected, dict):
        namespace = namespace or projected.get("namespace")
        account = projected.get("serviceaccount")
        if isinstance(account, dict):
            name = name or account.get("name")
            uid = uid or account.get("uid", "")
    subject = str(claims.get("sub", ""))
    if (not namespace or not name) and subject.startswith("system:serviceaccount:"):
        parts = subject.split(":")
        if len(parts) == 4:
            namespace, name = namespace or parts[2], name or parts[3]
    if not namespace or not name:
        raise permission_denied()
    return str(namespace), str(name), str(uid)


@dataclass
class KubernetesRole:
    name: str
    bound_names: list[str]
    bound_namespaces: list[str]
    audience: str
    params: dict[str, Any]

    def read_data(self) -> JSON:
        return {
            **token_params_read(self.params),
            "bound_service_account_names": self.bound_names,
            "bound_service_account_namespaces": self.bound_namespaces,
            "audience": self.audience,
            "alias_name_source": "serviceaccount_uid",
        }


def _bound(value: str, patterns: list[str]) -> bool:
    return any(p == "*" or fnmatch.fnmatchcase(value, p) for p in patterns)


class KubernetesBackend:
    type_name = "kubernetes"

    def __init__(self) -> None:
        self.config: JSON | None = None
        self.roles: dict[str, KubernetesRole] = {}

    def exists(self, subpath: str) -> bool | None:
        kind, _, name = subpath.partition("/")
        return name in self.roles if kind == "role" and name else None

    def unauthenticated(self, subpath: str) -> bool:
        return subpath == "login"

    def handle(self, req: Request) -> Reply:
        kind, _, name = req.subpath.partition("/")
        op = req.operation
        if kind == "login" and not name:
            if op not in ("create", "update"):
                raise VaultError(405, "unsupported operation")
            return self._login(req)
        if kind == "config" and not name:
            if op == "read":
                if self.config is None:
                    raise not_found()
                return Reply(
                    data={k: v for k, v in self.config.items() if k != "token_reviewer_jwt"}
                )
            if op not in ("create", "update"):
                raise VaultError(405, "unsupported operation")
            if not req.body.get("kubernetes_host"):
                raise bad_request("no host provided")
            self.config = {
                "kubernetes_host": str(req.body["kubernetes_host"]),
                "kubernetes_ca_cert": str(req.body.get("kubernetes_ca_cert") or ""),
                "token_reviewer_jwt": str(req.body.get("token_reviewer_jwt") or ""),
                "pem_keys": as_str_list(req.body.get("pem_keys")) if isinstance(
                    req.body.get("pem_keys"), list) else ([str(req.body["pem_keys"])]
                    if req.body.get("pem_keys") else []),
                "issuer": str(req.body.get("issuer") or ""),
                "disable_iss_validation": True,
                "disable_local_ca_jwt": bool(req.body.get("disable_local_ca_jwt", False)),
            }  # fmt: skip
            return Reply(status=204)
        if kind == "role" and (not name or op == "list"):
            if op != "list":
                raise VaultError(405, "unsupported operation")
            if not self.roles:
                raise not_found()
            return Reply(data={"keys": sorted(self.roles)})
        if kind == "role":
            return self._role(req, name)
        raise VaultError(404, "unsupported path")

    def _role(self, req: Request, name: str) -> Reply:
        done = read_or_delete(req, self.roles, name)
        if done is not None:
            return done
        body, existing = req.body, self.roles.get(name)
        names = as_str_list(body.get("bound_service_account_names")) or (
            existing.bound_names if existing else []
        )
        namespaces = as_str_list(body.get("bound_service_account_namespaces")) or (
            existing.bound_namespaces if existing else []
        )
        if not names:
            raise bad_request('"bound_service_account_names" can not be empty')
        if not namespaces:
            raise bad_request('"bound_service_account_namespaces" can not be empty')
        self.roles[name] = KubernetesRole(
            name=name,
            bound_names=names,
            bound_namespaces=namespaces,
            audience=str(body.get("audience") or (existing.audience if existing else "")),
            params=token_params(body, existing.params if existing else None),
        )
        return Reply(status=204)

    def _login(self, req: Request) -> Reply:
        role_name = str(req.body.get("role") or "")
        if not role_name:
            raise bad_request("missing role")
        jwt = str(req.body.get("jwt") or "")
        if not jwt:
            raise bad_request("missing jwt")
        role = self.roles.get(role_name)
        if role is None:
            raise bad_request(f'invalid role name "{role_name}"')
        if self.config is None:
            raise bad_request("could not load backend configuration")
        claims = decode_jwt(jwt, list(self.config["pem_keys"]))
        expiry = claims.get("exp")
        if isinstance(expiry, int | float) and expiry < req.now:
            raise permission_denied()
        if role.audience:
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if role.audience not in audiences:
                raise permission_denied()
        namespace, account, uid = service_account(claims)
        if not _bound(account, role.bound_names) or not _bound(namespace, role.bound_namespaces):
            raise permission_denied()
        meta = {
            "role": role_name,
            "service_account_name": account,
            "service_account_namespace": namespace,
            "service_account_uid": uid,
            "service_account_secret_name": str(
                claims.get("kubernetes.io/serviceaccount/secret.name", "")
            ),
        }
        login = login_from(
            role.params,
            display_name=f"kubernetes-{namespace}-{account}",
            meta=meta,
            entity_key=f"kubernetes:{uid or namespace + '/' + account}",
        )
        return Reply(login=login)
