"""The command line: the only layer that parses arguments, prints and chooses exit codes."""

from syphus.cli.main import main

__all__ = ["main"]
