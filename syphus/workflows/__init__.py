"""Workflows built on the engine: translate a release, find in-context examples (coldstart)."""
