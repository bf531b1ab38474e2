# Carried by each incident token (besides the resources' policies): it issues one child token
# per grant, and is renewed while the incident's grants need it.
path "auth/token/create" {
  capabilities = ["create", "update"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
