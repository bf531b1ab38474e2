"""Loopback emulators of the services Gatehouse talks to, for the test suite."""
