"""Helpers for clients of the Engine API (the shoal CLI, tests, scripts)."""
