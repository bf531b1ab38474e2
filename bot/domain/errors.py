"""Domain errors. Each carries a message a Slack user or an operator can act on."""

from bot.domain.wording import Wording


class GatehouseError(Exception):
    """Base of every error the domain raises on purpose.

    `wording` is the message with the people it names kept apart, for an interface to show
    its own way (the Slack adapter as mentions); `message` is its plain rendering, people as
    user ids, for logs, the CLI and anything stored."""

    def __init__(self, message: str | Wording) -> None:
        self.wording = message if isinstance(message, Wording) else Wording(message)
        self.message = str(self.wording)
        super().__init__(self.message)


class InvalidInput(GatehouseError):
    """Something a user typed cannot be accepted (bad duration, empty reason...)."""


class NotFound(GatehouseError):
    """The incident, request or resource named does not exist."""


class NotAllowed(GatehouseError):
    """The actor is not authorized for this action."""


class InvalidState(GatehouseError):
    """The action does not fit the current state (request already decided, incident closed...)."""


class AlreadyDone(GatehouseError):
    """The same actor already did this; repeating it changes nothing (double click, retry)."""


class CredentialError(GatehouseError):
    """The credential broker could not issue or revoke."""


class CredentialUnavailable(CredentialError):
    """Vault could not be reached or answered 429/5xx: worth retrying later."""


class CredentialDenied(CredentialError):
    """Vault refused the bot (permission denied): an operator must fix the Vault policy."""


class CredentialRejected(CredentialError):
    """Vault rejected the request as invalid or unknown (bad role, missing path)."""


class ChatError(GatehouseError):
    """Slack refused or failed a call after retries."""


class ChatUnavailable(ChatError):
    """Slack could not be reached, failed (5xx) or rate-limited us past the client's retries:
    worth trying again later, unlike a refusal."""


class ChannelNameTaken(ChatError):
    """conversations.create answered name_taken: try the next name."""


class OnCallUnavailable(GatehouseError):
    """PagerDuty could not say who is on call (down, slow, refused or unreadable): nobody is
    auto-approved on its account, and approvers decide as usual."""


class SinkError(GatehouseError):
    """An audit sink did not take a batch. Nothing is dropped: the batch is sent again later."""


class SinkUnavailable(SinkError):
    """The sink could not be reached, timed out, or answered 429 or 5xx: retried with backoff."""


class SinkMisconfigured(SinkError):
    """The sink refused the batch (bad URL, token, secret, index): an operator must fix the
    settings. Retried slowly, never dropped."""


class ClaimLost(GatehouseError):
    """The claim a worker held over outside work is gone (its database connection was lost):
    the work stops before its next call out, and whoever takes the claim next finishes it."""
