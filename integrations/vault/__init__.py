"""HashiCorp Vault: the credential broker (`broker`) over the bot's own session (`session`)."""

from integrations.vault.broker import VaultCredentialBroker
from integrations.vault.session import VaultConfig, VaultSession

__all__ = ["VaultConfig", "VaultCredentialBroker", "VaultSession"]
