# The Gatehouse bot's own Vault policy: exactly the paths it calls, nothing more.

# Create one orphan token per incident through the token role (see setup.sh).
path "auth/token/create/gatehouse-incident" {
  capabilities = ["create", "update"]
}

# Look up and renew its own token (AppRole and Kubernetes logins expire).
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Revoke, confirm and extend grant and incident tokens by accessor; never by token value.
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}
path "auth/token/renew-accessor" {
  capabilities = ["update"]
}

# Reconciliation: find tokens Gatehouse made that it no longer tracks.
path "auth/token/accessors/" {
  capabilities = ["list", "sudo"]
}

# Leases of the dynamic secrets: look up, renew (extensions), revoke, and list under the
# resources' paths for reconciliation.
path "sys/leases/lookup" {
  capabilities = ["update"]
}
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/revoke" {
  capabilities = ["update"]
}
path "sys/leases/lookup/database/creds/*" {
  capabilities = ["list", "sudo"]
}

# `gatehouse doctor` checks the capabilities above, and reads the token role: incident tokens
# must outlive the longest access the policy allows.
path "sys/capabilities-self" {
  capabilities = ["update"]
}
path "auth/token/roles/gatehouse-incident" {
  capabilities = ["read"]
}
