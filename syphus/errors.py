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
- ``StoreError``: a record could not be written (disk full, permissions): a
  ``FatalError``, so the run stops, resumable, rather than drop a paid answer.

Error kinds fall in two groups. Per-item kinds (bad request, content filter,
too large, a plugin that raised) are settled: a rerun leaves them alone.
``ENDPOINT_KINDS`` say the endpoint, not the query, failed (connections,
timeouts, 5xx, 404 model not found, malformed bodies): a plain rerun sends
those queries again.
"""

from __future__ import annotations


ENDPOINT_KINDS = frozenset({"connection", "timeout", "server_error", "rate_limited", "not_found", "malformed",
                            "http_408", "http_409", "refused"})  # refused: the endpoint's key (401/403, no quota)


def is_settled_kind(kind: str | None) -> bool:
    """Whether an error of ``kind`` is final for its query (a plain rerun does not send it again)."""
    return kind not in ENDPOINT_KINDS


class SyphusError(Exception):
    """Base of every error Syphus raises on purpose."""


class UserError(SyphusError):
    """Raise this and the user sees the message, then the process exits 2."""


class FatalError(SyphusError):
    """The endpoint refused the run as a whole (401, 403, no quota): stop now."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class StoreError(FatalError):
    """A record could not be written to the run folder; the run stops and stays resumable."""


class ItemError(SyphusError):
    """One query failed permanently; ``kind`` is a short machine-readable label."""

    def __init__(self, message: str, kind: str = "error", status: int | None = None, maybe_billed: bool = False):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.maybe_billed = maybe_billed


class TransientError(SyphusError):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds.

    ``maybe_billed``: the request reached the server and may have been charged
    (a timeout, a dropped or malformed reply), so a budget counts its worst case.
    """

    def __init__(self, message: str, kind: str = "transient", status: int | None = None,
                 retry_after: float | None = None, maybe_billed: bool = False):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.maybe_billed = maybe_billed


class RateLimited(TransientError):
    """HTTP 429: everyone pauses until ``retry_after`` has passed."""
