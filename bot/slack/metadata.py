"""Signed `private_metadata`: what a form carries between opening and submit, bound to its user.

The bot keeps state in a modal's private metadata (the channel a request form files into, the
request a deny form decides). Slack hands it back on submit; the bot trusts it only with a
valid HMAC-SHA256 over the user it was opened for and the value, keyed by a key derived from a
configured secret with a fixed label, so every replica checks what any replica signed.
"""

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

_LABEL = b"gatehouse view metadata v1"
_SEPARATOR = "."
_MAC_BYTES = 16  # 128 bits of HMAC-SHA256, base64url: 22 characters


class TamperedMetadata(Exception):
    """The metadata was not signed by this bot for this user, or was altered."""


class MetadataSeal:
    """Signs and checks private metadata with a key derived from `secret`."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if not raw:
            raise ValueError("metadata signing needs a non-empty secret")
        self._key = hmac.new(raw, _LABEL, hashlib.sha256).digest()

    def _mac(self, user: str, value: str) -> str:
        message = f"{user}\n{value}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, user: str, value: str) -> str:
        return f"{value}{_SEPARATOR}{self._mac(user, value)}"

    def verify(self, user: str, sealed: str) -> str:
        """The value signed for `user`; TamperedMetadata if it was not."""
        value, separator, mac = sealed.rpartition(_SEPARATOR)
        if not separator or not hmac.compare_digest(mac, self._mac(user, value)):
            raise TamperedMetadata("the form's metadata is not signed by Gatehouse for this user")
        return value

    def seal_view(self, user: str, view: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `view` whose private metadata (empty when unset) is signed for `user`."""
        sealed = dict(view)
        sealed["private_metadata"] = self.sign(user, str(view.get("private_metadata") or ""))
        return sealed


FORM_TAMPERED = (
    "This form could not be checked (it was changed after Gatehouse opened it); "
    "nothing was filed. Close it and start again."
)


def refused(form: str) -> None:
    """The one log line for a form whose metadata did not verify."""
    log.warning("%s form refused: its metadata is not signed by Gatehouse for this user", form)
