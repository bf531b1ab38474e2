"""The inbound Slack adapter: a Bolt app whose listeners ack first, then call services."""
