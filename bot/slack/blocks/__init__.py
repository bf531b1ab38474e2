"""Pure Block Kit builders: data in, JSON-ready dicts out. Every user-facing string lives here."""
