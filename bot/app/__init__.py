"""The application layer: one command per use case, and what runs after each change and as
time passes.

Listeners (`bot.slack`) parse what Slack sends and call these; these call the services (one
short transaction each), Vault through the services, the expiry timers, and the notifier that
follows the audit chain. How things read in Slack is not decided here but by the `Views` the
Slack adapter gives (`bot/app/deps.py`).
"""
