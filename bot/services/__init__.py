"""Use cases: one transaction each, authorization checked here, once per rule."""
