"""Fail watch: a run whose endpoint answers nothing stops with the fix instead of settling every query as an error.

``limit`` identical endpoint-level failures in a row (every query refused with 404, no connection at
all; ``retry.max_endpoint_failures``) stop the run with a FatalError, and so does a run in which every
query failed at the endpoint and none was answered. Those errors are not settled: a rerun after the
fix sends them again.

>>> w = FailWatch(2, ["http://127.0.0.1:9/v1"])
>>> w.failed("connection", "refused") is None, type(w.failed("connection", "refused")).__name__
(True, 'FatalError')
"""

from __future__ import annotations

from collections.abc import Sequence

from syphus.errors import ENDPOINT_KINDS, FatalError


class FailWatch:
    """Counts endpoint-level failures (``ENDPOINT_KINDS``) in a row, and in all, for one run."""

    def __init__(self, limit: int, where: Sequence[str]):
        self.limit = limit
        self.where = ", ".join(where)  # the endpoints' URLs (or names), as the message names them
        self.streak: tuple[str | None, int] = (None, 0)  # the same endpoint-level failure, how many in a row
        self.failures = 0  # queries this session ended by an endpoint-level failure (not settled)
        self.last = ""

    def failed(self, kind: str | None, message: str = "") -> FatalError | None:
        """A query ended in an error of ``kind`` (None: an answer); the FatalError to stop with, if it is time."""
        if kind not in ENDPOINT_KINDS:
            self.streak = (None, 0)
            return None
        last, n = self.streak
        n = n + 1 if kind == last else 1
        self.streak = (kind, n)
        self.failures += 1
        self.last = f"{kind}: {message}"
        return self.down(f"{n} queries in a row failed the same way ({kind}: {message})") if n >= self.limit else None

    def all_failed(self, answered: int, errors: int) -> FatalError | None:
        """At the end: the FatalError when nothing came back but the endpoint's failures, however few."""
        if answered == 0 and self.failures and self.failures == errors:
            return self.down(f"all {self.failures} queries failed at the endpoint (the last: {self.last})")
        return None

    def down(self, what: str) -> FatalError:
        """The one message of a run the endpoint failed: what happened, where, the fix, and that nothing is lost."""
        return FatalError(f"{what} and none succeeded: {self.where} is not answering. Check --base_url, --model (or "
                          "the Azure deployment) and that the server is up, then run the same command again: these "
                          "queries are not settled and will be sent again")
