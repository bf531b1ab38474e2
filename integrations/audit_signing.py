"""Ed25519 keys for audit checkpoints (cryptography). The private key lives in settings only."""

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)


def new_key() -> tuple[str, bytes]:
    """A fresh key: (the private key as base64 for GATEHOUSE_AUDIT_SIGNING_KEY, public PEM)."""
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )  # fmt: skip
    return base64.b64encode(raw).decode("ascii"), public_pem(private.public_key())


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Ed25519Signer:
    """Implements CheckpointSigner."""

    def __init__(self, private_key_b64: str) -> None:
        try:
            raw = base64.b64decode(private_key_b64, validate=True)
            self._key = Ed25519PrivateKey.from_private_bytes(raw)
        except ValueError:
            raise ValueError(
                "GATEHOUSE_AUDIT_SIGNING_KEY is not an Ed25519 key: make one with "
                "`gatehouse audit keygen`"
            ) from None
        self.key_id = key_id(self._key.public_key())

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


class Ed25519Checker:
    """Implements SignatureCheck with a public key from a PEM file."""

    def __init__(self, public_key_pem: bytes) -> None:
        key = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the public key is not an Ed25519 key")
        self._key = key
        self.key_id = key_id(key)

    @classmethod
    def from_file(cls, path: Path) -> "Ed25519Checker":
        return cls(path.read_bytes())

    def __call__(self, message: bytes, signature: str) -> bool:
        try:
            self._key.verify(bytes.fromhex(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True
