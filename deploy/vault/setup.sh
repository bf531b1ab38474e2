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
# GATEHOUSE_DB_USERNAME (default vault), GATEHOUSE_INCIDENT_TOKEN_MAX_TTL (default 24h: at least
# the longest max_ttl of your policy plus 10m, or access ends with its incident token early;
# `gatehouse doctor` checks it), GATEHOUSE_APPROLE_ENV_FILE (write GATEHOUSE_VAULT_ROLE_ID /
# _SECRET_ID there, mode 600, instead of printing the secret id),
# GATEHOUSE_APPROLE_NEW_SECRET_ID=1 (issue another secret id although the role has one).
#
# The bot's secret id never expires, so it is issued once: a rerun keeps the one in
# GATEHOUSE_APPROLE_ENV_FILE while it still logs in, and one a Vault lost (a dev-mode Vault keeps
# everything in memory) is registered again, so the bot's login keeps working. Without the file,
# a rerun issues none while the role exists (GATEHOUSE_APPROLE_NEW_SECRET_ID=1 to get one).
#
#   deploy/vault/setup.sh --if-needed   does nothing while Vault still has the AppRole login of
#                                       GATEHOUSE_APPROLE_ENV_FILE (for a loop that sets a
#                                       restarted dev-mode Vault up again)
set -eu

: "${VAULT_ADDR:?set VAULT_ADDR to the Vault server}"
: "${VAULT_TOKEN:?set VAULT_TOKEN to a token that may configure Vault}"
: "${GATEHOUSE_DB_PASSWORD:?set GATEHOUSE_DB_PASSWORD for the database user Vault uses}"
# A template Vault fills in; single quotes keep its braces away from the shell.
DEFAULT_DB_URL='postgresql://{{username}}:{{password}}@postgres:5432/ml?sslmode=disable'
DB_URL="${GATEHOUSE_DB_CONNECTION_URL:-$DEFAULT_DB_URL}"
DB_USER="${GATEHOUSE_DB_USERNAME:-vault}"
INCIDENT_MAX_TTL="${GATEHOUSE_INCIDENT_TOKEN_MAX_TTL:-24h}"
ENV_FILE="${GATEHOUSE_APPROLE_ENV_FILE:-}"
ROLE_PATH=auth/approle/role/gatehouse
HERE="$(cd "$(dirname "$0")" && pwd)"

say() { printf '%s\n' "$*"; }

# The login GATEHOUSE_APPROLE_ENV_FILE holds, if any.
KNOWN_ROLE_ID=""
KNOWN_SECRET_ID=""
if [ -n "$ENV_FILE" ] && [ -f "$ENV_FILE" ]; then
  KNOWN_ROLE_ID="$(sed -n 's/^GATEHOUSE_VAULT_ROLE_ID=//p' "$ENV_FILE")"
  KNOWN_SECRET_ID="$(sed -n 's/^GATEHOUSE_VAULT_SECRET_ID=//p' "$ENV_FILE")"
fi

if [ "${1:-}" = "--if-needed" ] && [ -n "$KNOWN_ROLE_ID" ] \
  && [ "$(vault read -field=role_id "$ROLE_PATH/role-id" 2>/dev/null)" = "$KNOWN_ROLE_ID" ]; then
  exit 0
fi

# Logs in with role id $1 and the secret id on stdin; the token it got is revoked at once.
logs_in() {
  login_token="$(vault write -field=token auth/approle/login role_id="$1" secret_id=- 2>/dev/null)" \
    || return 1
  env VAULT_TOKEN="$login_token" vault write -f auth/token/revoke-self >/dev/null 2>&1 || true
}

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

# 5. The bot's AppRole, and its login: kept across reruns (see the top of this file).
vault read sys/auth/approle >/dev/null 2>&1 || vault auth enable approle
ROLE_IS_NEW=no
vault read "$ROLE_PATH" >/dev/null 2>&1 || ROLE_IS_NEW=yes
vault write "$ROLE_PATH" \
  token_policies=gatehouse token_ttl=1h token_max_ttl=24h secret_id_ttl=0
SECRET_ID=""
if [ "$ROLE_IS_NEW" = yes ] && [ -n "$KNOWN_ROLE_ID" ] && [ -n "$KNOWN_SECRET_ID" ]; then
  # Vault lost the role (a dev-mode Vault restarted): the bot's login is registered again.
  vault write "$ROLE_PATH/role-id" role_id="$KNOWN_ROLE_ID" >/dev/null
  if printf '%s' "$KNOWN_SECRET_ID" \
    | vault write "$ROLE_PATH/custom-secret-id" secret_id=- >/dev/null; then
    SECRET_ID="$KNOWN_SECRET_ID"
    say "approle: the login in $ENV_FILE registered again"
  fi
fi
ROLE_ID="$(vault read -field=role_id "$ROLE_PATH/role-id")"
if [ -z "$SECRET_ID" ] && [ -n "$KNOWN_SECRET_ID" ] \
  && printf '%s' "$KNOWN_SECRET_ID" | logs_in "$ROLE_ID"; then
  SECRET_ID="$KNOWN_SECRET_ID"
  say "approle: the secret id in $ENV_FILE still logs in; kept"
fi
if [ -z "$SECRET_ID" ] && [ -z "$ENV_FILE" ] && [ "$ROLE_IS_NEW" = no ] \
  && [ "${GATEHOUSE_APPROLE_NEW_SECRET_ID:-}" != 1 ]; then
  say "approle: GATEHOUSE_VAULT_AUTH=approle GATEHOUSE_VAULT_ROLE_ID=$ROLE_ID"
  say "approle: role gatehouse exists, so no new secret id was issued; the bot keeps its own"
  say "  (GATEHOUSE_APPROLE_NEW_SECRET_ID=1 issues another; destroy the old one's accessor)"
  say "Vault is ready for Gatehouse."
  exit 0
fi
if [ -z "$SECRET_ID" ]; then
  SECRET_ID="$(vault write -f -field=secret_id "$ROLE_PATH/secret-id")"
fi
if [ -n "$ENV_FILE" ]; then
  if [ "$ROLE_ID" != "$KNOWN_ROLE_ID" ] || [ "$SECRET_ID" != "$KNOWN_SECRET_ID" ]; then
    umask 077
    printf 'GATEHOUSE_VAULT_AUTH=approle\nGATEHOUSE_VAULT_ROLE_ID=%s\nGATEHOUSE_VAULT_SECRET_ID=%s\n' \
      "$ROLE_ID" "$SECRET_ID" > "$ENV_FILE"
    say "approle: credentials written to $ENV_FILE"
  fi
else
  say "approle: GATEHOUSE_VAULT_AUTH=approle GATEHOUSE_VAULT_ROLE_ID=$ROLE_ID"
  say "approle: GATEHOUSE_VAULT_SECRET_ID=$SECRET_ID"
fi
say "Vault is ready for Gatehouse."
