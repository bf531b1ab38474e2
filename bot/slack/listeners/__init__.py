"""Bolt listeners, one module per feature. Each acks first and does the work lazily."""
