#!/usr/bin/env sh
# Set Vault up for Gatehouse with the `vault` CLI: the database secrets engine and its roles for
# the resources of deploy/policy.example.yaml, the policies, the incident token role, and an
# AppRole the bot logs in with. Safe to run again.
#
#   VAULT_ADDR=https://vault:8200 VAULT_TOKEN=<admin token> \
#   GATEHOUSE_DB_PASSWORD=<password of the database user Vault manages roles with> \
#   deploy/vault/setup.sh
#
# Optional: GATEHOUSE_DB_CONNECTION_URL (a Vault connection_url template),
# GATEHOUSE_DB_USERNAME (default vault), GATEHOUSE_INCIDENT_TOKEN_MAX_TTL (default 24h),
# GATEHOUSE_APPROLE_ENV_FILE (write GATEHOUSE_VAULT_ROLE_ID / _SECRET_ID there, mode 600,
# instead of printing the secret id).
set -eu

: "${VAULT_ADDR:?set VAULT_ADDR to the Vault server}"
: "${VAULT_TOKEN:?set VAULT_TOKEN to a token that may configure Vault}"
: "${GATEHOUSE_DB_PASSWORD:?set GATEHOUSE_DB_PASSWORD for the database user Vault uses}"
# A template Vault fills in; single quotes keep its braces away from the shell.
DEFAULT_DB_URL='postgresql://{{username}}:{{password}}@postgres:5432/ml?sslmode=disable'
DB_URL="${GATEHOUSE_DB_CONNECTION_URL:-$DEFAULT_DB_URL}"
DB_USER="${GATEHOUSE_DB_USERNAME:-vault}"
INCIDENT_MAX_TTL="${GATEHOUSE_INCIDENT_TOKEN_MAX_TTL:-24h}"
HERE="$(cd "$(dirname "$0")" && pwd)"

say() { printf '%s\n' "$*"; }

# 1. The database secrets engine and its connection.
vault read sys/mounts/database >/dev/null 2>&1 || vault secrets enable -path=database database
vault write database/config/ml-postgres \
  plugin_name=postgresql-database-plugin \
  connection_url="$DB_URL" \
  username="$DB_USER" \
  password="$GATEHOUSE_DB_PASSWORD" \
  allowed_roles="inference-logs-ro,feature-store-rw"
say "database engine: connection ml-postgres configured"

# 2. One role per dynamic-secret resource. Revocation also ends open sessions.
vault write database/roles/inference-logs-ro \
  db_name=ml-postgres \
  creation_statements=@"$HERE/sql/inference-logs-ro.create.sql" \
  revocation_statements=@"$HERE/sql/inference-logs-ro.revoke.sql" \
  default_ttl=1h max_ttl=4h
vault write database/roles/feature-store-rw \
  db_name=ml-postgres \
  creation_statements=@"$HERE/sql/feature-store-rw.create.sql" \
  revocation_statements=@"$HERE/sql/feature-store-rw.revoke.sql" \
  default_ttl=30m max_ttl=2h
say "database roles: inference-logs-ro, feature-store-rw"

# 3. Policies: the bot's, the incident tokens', one per resource.
for name in gatehouse gatehouse-incident-token gatehouse-inference-logs-ro gatehouse-feature-store-rw; do
  vault policy write "$name" "$HERE/policies/$name.hcl"
done
vault policy read ml-serving-exec >/dev/null 2>&1 \
  || vault policy write ml-serving-exec "$HERE/policies/ml-serving-exec.hcl"
say "policies written"

# 4. The token role incident tokens are made through: orphans, so rotating the bot's own
#    token never revokes an incident's access, allowed exactly the grant policies.
vault write auth/token/roles/gatehouse-incident \
  allowed_policies="gatehouse-incident-token,gatehouse-inference-logs-ro,gatehouse-feature-store-rw,ml-serving-exec" \
  orphan=true renewable=true token_explicit_max_ttl="$INCIDENT_MAX_TTL"
say "token role: gatehouse-incident"

# 5. The bot's AppRole.
vault read sys/auth/approle >/dev/null 2>&1 || vault auth enable approle
vault write auth/approle/role/gatehouse \
  token_policies=gatehouse token_ttl=1h token_max_ttl=24h secret_id_ttl=0
ROLE_ID="$(vault read -field=role_id auth/approle/role/gatehouse/role-id)"
SECRET_ID="$(vault write -f -field=secret_id auth/approle/role/gatehouse/secret-id)"
if [ -n "${GATEHOUSE_APPROLE_ENV_FILE:-}" ]; then
  umask 077
  printf 'GATEHOUSE_VAULT_AUTH=approle\nGATEHOUSE_VAULT_ROLE_ID=%s\nGATEHOUSE_VAULT_SECRET_ID=%s\n' \
    "$ROLE_ID" "$SECRET_ID" > "$GATEHOUSE_APPROLE_ENV_FILE"
  say "approle: credentials written to $GATEHOUSE_APPROLE_ENV_FILE"
else
  say "approle: GATEHOUSE_VAULT_AUTH=approle GATEHOUSE_VAULT_ROLE_ID=$ROLE_ID"
  say "approle: GATEHOUSE_VAULT_SECRET_ID=$SECRET_ID"
fi
say "Vault is ready for Gatehouse."
