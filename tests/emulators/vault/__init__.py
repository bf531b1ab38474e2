"""A HashiCorp Vault HTTP API emulator for tests, spoken to by the real hvac client.

What it serves (all under /v1/): sys/health, policies (HCL, `+`/`*` globs, deny, sudo), mounts,
capabilities, token auth (create, roles, lookup, renew, revoke, accessors, the parent/child
tree), AppRole, a simplified Kubernetes auth, the database secrets engine with the PostgreSQL
plugin (real roles in a real server), leases, and response wrapping. Unknown or wrongly typed
parameters are checked against Vault's OpenAPI document. Time can be moved forward with
`advance_clock`, and expiry then revokes exactly what Vault would. `revocations()` lists every
revocation with its cause and caller, so tests can count them per token and lease.
"""

from .core import Revocation
from .server import RecordedCall, VaultEmulator, running_vault

__all__ = ["RecordedCall", "Revocation", "VaultEmulator", "running_vault"]
