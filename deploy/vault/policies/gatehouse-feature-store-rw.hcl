# Given to each grant token for feature-store-rw: it may read one credential.
path "database/creds/feature-store-rw" {
  capabilities = ["read"]
}
