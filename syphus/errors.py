"""The error tree: each class says what the caller should do.

- ``UserError``: the user must fix something (a file, a flag, a config key);
  the CLI prints the message on one line and exits 2. Raise it with a message
  that names the file, line or id and the fix.
- ``FatalError``: the run must stop before more is spent (bad key, no quota);
  the CLI exits 3 and the run stays resumable.
- ``ItemError``: one query failed for good; it is recorded in ``errors.jsonl``
  and the run goes on.
- ``TransientError``: worth retrying (429, 5xx, timeouts, dropped connections,
  malformed bodies); the retry policy decides when to give up, and then it is
  recorded like an ``ItemError``.

This module imports nothing from syphus.
"""

from __future__ import annotations


class SyphusError(Exception):
    """Base of every error Syphus raises on purpose."""


class UserError(SyphusError):
    """Raise this and the user sees the message, then the process exits 2."""


class FatalError(SyphusError):
    """The endpoint refused the run as a whole (401, 403, no quota): stop now."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ItemError(SyphusError):
    """One query failed permanently; ``kind`` is a short machine-readable label."""

    def __init__(self, message: str, kind: str = "error", status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status


class TransientError(SyphusError):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, kind: str = "transient", status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class RateLimited(TransientError):
    """HTTP 429: everyone pauses until ``retry_after`` has passed."""
