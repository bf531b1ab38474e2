# An example of the policy behind serving-cluster-exec, whose credential is a Vault token
# carrying this policy. Replace it with your platform's own: setup.sh writes it only when no
# policy of that name exists yet.
path "kubernetes/creds/ml-serving-exec" {
  capabilities = ["update"]
}
