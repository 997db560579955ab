"""Limits: request and token budgets, fed by response headers, waited on the clock.

A request costs 1 request and ``estimated prompt tokens + max_tokens`` tokens,
as OpenAI counts it. Each budget is a bucket refilled continuously at
``limit / 60`` per second that holds at most ``burst_seconds`` worth, so the
dispatch rate never outruns a server that enforces per second. Responses'
``x-ratelimit-*`` headers teach the limits when none are configured and pull
the buckets down to what the server says remains; a 429 pauses everyone.

>>> lim = RateLimiter(rpm=600, tpm=None)
>>> asyncio.run(lim.acquire(100))   # 10 per second, 1 second of burst: no wait

Waiters queue on a FIFO lock; only the head sleeps, for exactly as long as its
cost needs to refill.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from syphus.errors import ItemError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """OpenAI's reset format (``"1s"``, ``"6m0s"``, ``"120ms"``, ``"1h2m3.5s"``) in seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def estimate_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """A conservative prompt-token estimate without a tokenizer.

    English runs about 4 characters a token; other scripts take a token or
    more per character, so non-ASCII characters count one each. Each message
    adds 4 tokens of framing, the reply's priming 3.
    """
    total = 3
    for m in messages:
        content = m.get("content") or ""
        if not isinstance(content, str):
            content = str(content)
        ascii_chars = len(content.encode("ascii", "ignore"))
        total += 4 + math.ceil(ascii_chars / 4) + (len(content) - ascii_chars)
    return total


class Bucket:
    """One budget: ``limit`` per minute, holding at most ``burst_seconds`` of it."""

    __slots__ = ("limit", "rate", "capacity", "level", "stamp", "configured")

    def __init__(self, limit: float, burst_seconds: float, now: float, configured: bool):
        self.limit = float(limit)
        self.rate = self.limit / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self.stamp = now
        self.configured = configured

    def set_limit(self, limit: float, burst_seconds: float) -> None:
        self.limit = float(limit)
        self.rate = self.limit / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = min(self.level, self.capacity)

    def refill(self, now: float, ceiling: float) -> None:
        if now > self.stamp:
            self.level = min(max(ceiling, self.capacity), self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` fits (0 if it fits now)."""
        missing = cost - self.level
        return 0.0 if missing <= 0 else missing / self.rate


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets shared by all workers."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None, burst_seconds: float = 1.0,
                 follow_headers: bool = True, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep):
        self._clock = clock
        self._sleep = sleep
        self._burst = burst_seconds
        self._follow = follow_headers
        now = clock()
        self.requests = Bucket(rpm, burst_seconds, now, True) if rpm else None
        self.tokens = Bucket(tpm, burst_seconds, now, True) if tpm else None
        self.paused_until = 0.0
        self.pauses = 0
        self._lock = asyncio.Lock()

    def check(self, tokens: int) -> None:
        """Raise ItemError if ``tokens`` can never fit the token budget the user configured.

        A limit learnt from headers never rejects a request: a server that reports a
        small bucket is asked anyway, and its own answer (413, context length) decides.
        """
        if self.tokens is not None and self.tokens.configured and tokens > self.tokens.limit:
            raise ItemError(f"this request needs about {tokens} tokens (prompt + max_tokens) but the whole "
                            f"budget is {self.tokens.limit:.0f} tokens per minute; shorten the input or "
                            "lower generation.max_tokens", kind="too_large")

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of ``tokens`` tokens may be sent, then take it from the budgets."""
        self.check(tokens)
        async with self._lock:
            while True:
                now = self._clock()
                delay = self.paused_until - now
                for bucket, cost in ((self.requests, 1), (self.tokens, tokens)):
                    if bucket is not None:
                        cost = min(cost, bucket.limit)  # a learnt bucket smaller than one request: a full one will do
                        bucket.refill(now, cost)
                        delay = max(delay, bucket.wait_for(cost))
                if delay <= 1e-6:  # float residue after an exact sleep: it fits
                    break
                await self._sleep(delay)
            if self.requests is not None:
                self.requests.level -= 1
            if self.tokens is not None:
                self.tokens.level -= tokens

    def pause(self, seconds: float) -> None:
        """A 429: nobody is sent anything for ``seconds``, and the buckets start empty after."""
        now = self._clock()
        self.pauses += 1
        self.paused_until = max(self.paused_until, now + max(0.0, seconds))
        for bucket in (self.requests, self.tokens):
            if bucket is not None:
                bucket.refill(now, 0)
                bucket.level = min(bucket.level, 0.0)
                bucket.stamp = max(bucket.stamp, self.paused_until)  # no refill while paused

    def observe(self, headers: Mapping[str, str]) -> None:
        """Follow a response's ``x-ratelimit-*`` headers."""
        if not self._follow:
            return
        now = self._clock()
        for kind in ("requests", "tokens"):
            limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            bucket = getattr(self, kind)
            if limit and limit > 0:
                if bucket is None:
                    bucket = Bucket(limit, self._burst, now, False)
                    setattr(self, kind, bucket)
                elif limit != bucket.limit and (limit < bucket.limit or not bucket.configured):
                    bucket.refill(now, 0)
                    bucket.set_limit(limit, self._burst)
            if bucket is not None and remaining is not None:
                bucket.refill(now, 0)
                bucket.level = min(bucket.level, remaining)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
