"""Report counts: the report's counters that keep memory flat, and how texts are measured and grouped.

``Histogram`` counts whole numbers exactly up to a limit, ``TopCounter`` keeps the frequent keys of
a stream exactly and drops the rarest, ``text_tokens`` measures a text by the run's estimator and
``reason_key`` puts reasons of one kind together. Used by the report's sections
(``syphus.release.reportsection`` and the modules named there).
"""

from __future__ import annotations

import re
from typing import Any

from syphus.engine.limits import estimate_tokens

HIST_LIMIT = 1024  # lengths counted one by one up to this; longer ones together (their maximum is kept)
TOP = 15  # keys shown in each ranked list
_FRAMING = estimate_tokens([{"role": "user", "content": ""}])
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'(?=$| \()|\"(?:[^\"\\]|\\.)*\"(?=$| \()")  # a quoted snippet of the reply
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LANG_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z]{2,4})?:\s*")


def text_tokens(text: str) -> int:
    """Tokens of one text by the run's estimator (``estimate_tokens`` less a message's framing).

    >>> text_tokens("What is the dog doing?"), text_tokens("狗在做什么")
    (6, 5)
    """
    return estimate_tokens([{"role": "user", "content": text}]) - _FRAMING


def reason_key(text: str) -> str:
    """A reason, problem or failure with its particulars (quoted text, numbers, language) set aside,
    so that reasons of one kind count together.

    >>> reason_key("answer without a question: 'The dog.' (3 of 5)")
    "answer without a question: '…' (N of N)"
    >>> reason_key("no 'Question:'/'Answer:' labels found")
    "no 'Question:'/'Answer:' labels found"
    >>> reason_key("zh: implausible length (3 characters for 50 in English)")
    'implausible length (N characters for N in English)'
    """
    text = _LANG_PREFIX.sub("", str(text).strip())
    return _NUMBER.sub("N", _QUOTED.sub("'…'", text))[:160] or "(none given)"


class Histogram:
    """Counts of a non-negative whole number, exact up to ``limit`` (beyond: counted together)."""

    def __init__(self, limit: int = HIST_LIMIT):
        self.limit = limit
        self.counts = [0] * (limit + 1)
        self.over = self.n = self.total = self.max = 0

    def add(self, value: int) -> None:
        self.n += 1
        self.total += value
        if value > self.max:
            self.max = value
        if value > self.limit:
            self.over += 1
        else:
            self.counts[value] += 1

    def quantile(self, q: float) -> int:
        """The smallest value with at least a share ``q`` of the counts at or below it."""
        if not self.n:
            return 0
        need, seen = q * self.n, 0
        for value, count in enumerate(self.counts):
            seen += count
            if seen >= need:
                return value
        return self.max

    def _at(self, rank: int) -> int:
        """The value at ``rank`` (from 0) in sorted order."""
        seen = 0
        for value, count in enumerate(self.counts):
            seen += count
            if seen > rank:
                return value
        return self.max

    def median(self) -> float:
        """The median: the middle value, or the mean of the two middle values when the count is even.

        >>> h = Histogram()
        >>> for v in (12, 14, 19, 21):
        ...     h.add(v)
        >>> h.median(), h.quantile(0.5)
        (16.5, 14)
        """
        if not self.n:
            return 0
        low, high = self._at((self.n - 1) // 2), self._at(self.n // 2)
        mid = (low + high) / 2
        return int(mid) if mid == int(mid) else mid

    def to_json(self) -> dict[str, Any]:
        last = max((i for i, c in enumerate(self.counts) if c), default=-1)
        return {"n": self.n, "mean": round(self.total / self.n, 2) if self.n else 0.0,
                "median": self.median(), "p90": self.quantile(0.9), "p99": self.quantile(0.99),
                "max": self.max, "counts": self.counts[:last + 1], "over_limit": self.over, "limit": self.limit}


class TopCounter:
    """A counter that holds at most ``cap`` keys: past that the rarest are dropped (``pruned`` says how
    many times), so the frequent keys stay exact and memory stays flat whatever the text holds."""

    def __init__(self, cap: int = 5000):
        self.cap = cap
        self.counts: dict[str, int] = {}
        self.total = 0
        self.pruned = 0

    def add(self, key: str, n: int = 1) -> None:
        self.total += n
        self.counts[key] = self.counts.get(key, 0) + n
        if len(self.counts) > self.cap:
            keep = sorted(self.counts.items(), key=lambda kv: -kv[1])[:self.cap // 2]
            self.counts = dict(keep)
            self.pruned += 1

    def top(self, k: int = TOP) -> list[list[Any]]:
        return [[key, n] for key, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]

    def to_json(self, k: int = TOP) -> dict[str, Any]:
        return {"total": self.total, "distinct": len(self.counts), "top": self.top(k),
                **({"approximate": True} if self.pruned else {})}
