# Given to each grant token for inference-logs-ro: it may read one credential.
path "database/creds/inference-logs-ro" {
  capabilities = ["read"]
}
