"""Limits: request and token budgets, fed by response headers, waited on the clock.

A request costs 1 request and ``estimated prompt tokens + max_tokens`` tokens,
as OpenAI counts it. Each budget is a bucket refilled continuously at
``limit / 60`` per second that holds at most a *burst window* worth of it:
``burst_seconds`` (1 s) to begin with, so the dispatch rate never outruns a
server that enforces per second. Responses' ``x-ratelimit-*`` headers teach
the limits when none are configured and pull the buckets down to what the
server says remains; a 429 pauses everyone.

>>> lim = RateLimiter(rpm=600, tpm=None)
>>> asyncio.run(lim.acquire(100))   # 10 per second, 1 second of burst: no wait

Probing the burst. A server that enforces per minute starts a run with a whole
minute of budget, which a 1 s window never spends. So while responses report
``x-ratelimit-remaining-*`` for every budget and no 429 has come, the window
widens like a slow start: each time a window's worth has been answered it
doubles (up to a minute), and the new room is credited to the buckets at once,
but never past what the headers say remains less what is still on the wire. A
restarted run therefore spends only what the server still holds. The first 429
says the server enforces shorter windows than its headers tell: the window
falls back to ``burst_seconds`` and stays there for the run. Without those
headers nothing widens.

Waiters queue on a FIFO lock; only the head sleeps, for exactly as long as its
cost needs to refill.

Sane ranges. What headers teach is clamped before it is believed: a limit must be a finite
positive number (at most ``MAX_LIMIT``), a remaining count lies between 0 and the limit (a
``x-ratelimit-remaining-tokens: -5000000`` empties the bucket, no more), NaN and infinities teach
nothing. And no wait is longer than ``max_wait`` (``--max_retry_seconds``): after it the request
goes, and the server's own answer (a 429 and its ``Retry-After``, capped too) decides.

Calibration. The prompt estimate is conservative by design (``estimate_tokens``; the schema and
images on top). The server says what it counted: ``usage.prompt_tokens`` in each reply, and the drop
in ``x-ratelimit-remaining-tokens`` between responses. ``Calibration`` learns, per request shape
(reply format, with or without images), the ratio of the server's prompt count to the estimate
and the difference between them: a request is paced by the smaller of (estimate × the largest
recent ratio) and (estimate − the smallest recent overcount), each at or above every recent count
of the server's, so pacing is never more optimistic than the server (a server that counts the
schema or CJK text is met with its own figure) and no more pessimistic than it needs to be. The drop in the remaining tokens (the refill added back, per
request the remaining requests say were admitted) is a second witness: when the server charges
requests more than the calibrated pace assumes (it counts what ``usage`` does not report), every
cost is scaled up by that factor. With no usage and no headers the estimate stays as it is.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from syphus.errors import ItemError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
MINUTE = 60.0  # the limits are per minute: no server bucket holds more than a minute's worth
MAX_LIMIT = 1e12  # a learnt limit above this is taken as this (nobody is granted more a minute)


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
    adds 4 tokens of framing, the reply's priming 3. Of a message whose content
    is a list of parts, the text parts count; images are counted apart
    (``syphus.engine.attachment``), from their size.
    """
    total = 3
    for m in messages:
        content = m.get("content") or ""
        if isinstance(content, list):  # parts: the text ones count here, images by their own table
            content = "".join(p.get("text") or "" for p in content if isinstance(p, Mapping))
        elif not isinstance(content, str):
            content = str(content)
        ascii_chars = len(content.encode("ascii", "ignore"))
        total += 4 + math.ceil(ascii_chars / 4) + (len(content) - ascii_chars)
    return total


class Calibration:
    """The server's prompt count against the local estimate, per request shape, and the header witness.

    ``ratio(shape)`` is the largest of the last ``keep`` ratios ``usage.prompt_tokens / estimate``
    seen for that shape, within [``FLOOR``, ``CEILING``]; 1.0 (the estimate as it is) before any.
    ``prompt(shape, estimate)`` is what a request is paced by (see there).

    >>> c = Calibration()
    >>> c.learn("json", 1100, 990); c.learn("json", 1000, 1000); c.ratio("json"), c.ratio("text")
    (1.0, 1.0)
    >>> c.learn("text", 1000, 900); c.ratio("text")
    0.9
    """

    FLOOR, CEILING = 0.5, 8.0  # a server reporting 1 token a prompt is not believed to count nothing
    HEADER_SLACK = 1.05  # header drops within 5% of the pace are noise (latency jitter), not a finding
    HEADER_MIN_REQUESTS = 30.0  # admitted requests the header witness needs before it is believed

    def __init__(self, keep: int = 64):
        self.keep = keep
        self._seen: dict[str, deque[float]] = {}
        self._ratio: dict[str, float] = {}
        self._over: dict[str, deque[int]] = {}  # estimate - server count of the recent replies, per shape
        self._offset: dict[str, int] = {}  # the smallest of those
        self.samples: dict[str, int] = {}
        self.header_factor = 1.0  # costs scaled by this when the headers show the server charges more
        self._drops = deque(maxlen=256)  # (tokens charged, requests admitted) between two responses
        self._paced = deque(maxlen=256)  # the costs of the latest requests sent, before the header factor
        self._last: tuple[float, float, float] | None = None  # (time, remaining tokens, remaining requests)
        self.server_per_request: float | None = None

    def ratio(self, shape: str) -> float:
        return self._ratio.get(shape, 1.0)

    def learn(self, shape: str, estimate: int, counted: int) -> None:
        """One reply's ``usage.prompt_tokens`` (``counted``) for a prompt estimated at ``estimate``."""
        if estimate <= 0 or counted <= 0:
            return
        seen = self._seen.get(shape)
        if seen is None:
            seen = self._seen[shape] = deque(maxlen=self.keep)
            self._over[shape] = deque(maxlen=self.keep)
        seen.append(counted / estimate)
        self._over[shape].append(estimate - counted)
        self.samples[shape] = self.samples.get(shape, 0) + 1
        self._ratio[shape] = min(self.CEILING, max(self.FLOOR, max(seen)))
        self._offset[shape] = min(self._over[shape])

    def prompt(self, shape: str, estimate: int) -> int:
        """The prompt tokens to pace a request of ``shape`` estimated at ``estimate`` by: the smaller of two
        readings of the recent replies, each at or above every one of them, so their minimum is too: the
        estimate times the largest ratio, and the estimate less the smallest overcount (the framing and
        schema the estimate adds are a constant, the text a proportion). Never under the floor.

        >>> c = Calibration(); c.learn("json", 300, 200); c.learn("json", 600, 500); c.prompt("json", 400)
        300
        """
        ratio = self._ratio.get(shape)
        if ratio is None:
            return estimate
        by_offset = estimate - self._offset[shape]
        return max(math.ceil(estimate * self.FLOOR), min(math.ceil(estimate * ratio), math.ceil(by_offset)))

    def sent(self, cost: float) -> None:
        self._paced.append(cost / self.header_factor)  # as the usage ratios alone would pace it

    def witness(self, now: float, tokens: Bucket | None, requests: Bucket | None,
                remaining_tokens: float | None, remaining_requests: float | None) -> None:
        """The drop in the remaining budgets since the last response, the refill added back."""
        if tokens is None or requests is None or remaining_tokens is None or remaining_requests is None:
            return
        last, self._last = self._last, (now, remaining_tokens, remaining_requests)
        if last is None:
            return
        then, rt, rr = last
        dt = max(0.0, now - then)
        # a budget at (or near) full refills no further: the drop says nothing then
        if max(rt, remaining_tokens) >= tokens.limit * 0.98 or max(rr, remaining_requests) >= requests.limit * 0.98:
            return
        self._drops.append((rt - remaining_tokens + tokens.rate * dt, rr - remaining_requests + requests.rate * dt))
        charged = sum(d[0] for d in self._drops)
        admitted = sum(d[1] for d in self._drops)
        if admitted < self.HEADER_MIN_REQUESTS or charged <= 0 or not self._paced:
            return
        self.server_per_request = charged / admitted
        paced = sum(self._paced) / len(self._paced)
        found = self.server_per_request / paced
        self.header_factor = min(self.CEILING, found) if found > self.HEADER_SLACK else 1.0

    def describe(self) -> dict[str, Any]:
        return {"ratios": {k: round(v, 4) for k, v in sorted(self._ratio.items())},
                "overcount": dict(sorted(self._offset.items())),
                "samples": dict(sorted(self.samples.items())), "header_factor": round(self.header_factor, 4),
                "server_tokens_per_request": (round(self.server_per_request, 1)
                                              if self.server_per_request is not None else None)}

    def brief(self) -> str:
        """For the progress line: ``cal json×0.91``; empty before anything was learnt."""
        parts = [f"{k}×{v:.2f}" for k, v in sorted(self._ratio.items())]
        if self.header_factor != 1.0:
            parts.append(f"hdr×{self.header_factor:.2f}")
        return ("cal " + " ".join(parts)) if parts else ""


class Bucket:
    """One budget: ``limit`` per minute, holding at most ``burst_seconds`` of it (the burst window)."""

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
    """Requests-per-minute and tokens-per-minute budgets shared by all workers.

    ``window`` is the burst window now (seconds of budget a bucket may hold); ``describe()``
    is what meta.json records of it.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None, burst_seconds: float = 1.0,
                 follow_headers: bool = True, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep,
                 max_wait: float | None = None):
        self._clock = clock
        self.max_wait = max_wait  # no wait here is longer (--max_retry_seconds); None: no cap
        self.calibration = Calibration()
        self._sleep = sleep
        self._base = burst_seconds
        self._top = max(MINUTE, burst_seconds)
        self._follow = follow_headers
        now = clock()
        self.requests = Bucket(rpm, burst_seconds, now, True) if rpm else None
        self.tokens = Bucket(tpm, burst_seconds, now, True) if tpm else None
        self.paused_until = 0.0
        self.pauses = 0
        self.window = self.max_window = burst_seconds
        self.probing = follow_headers  # until the first 429
        self.probed = False  # a response reported what remains of every budget
        self.short_windows = False  # a 429 came while the headers said there was room
        self._room = 0.0  # seconds of budget the last response said the server holds beyond the buckets
        # Token costs of the requests sent and not answered yet, oldest first: the server has
        # charged them already, and the remaining it reported may not show it yet. One that is
        # never answered (a lost connection) stays counted, which only makes the probe warier.
        self._on_wire: deque[int] = deque()
        self._answered = [0, 0]  # requests and tokens answered since the window last widened
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

    def paced(self, shape: str, prompt: int, completion: int = 0) -> int:
        """The tokens a request of ``shape`` with a prompt estimated at ``prompt`` is paced by, without
        ``completion`` (its completion budget, counted as it is): the calibrated prompt, scaled by the
        header witness.

        >>> lim = RateLimiter(tpm=6000); lim.calibration.learn("json", 200, 150); lim.paced("json", 200)
        150
        """
        c = self.calibration
        return math.ceil((c.prompt(shape, prompt) + completion) * c.header_factor) - completion

    def learn(self, shape: str, prompt: int, usage: Mapping[str, Any] | None) -> None:
        """A reply's ``usage`` for a request of ``shape`` whose prompt was estimated at ``prompt``."""
        counted = usage.get("prompt_tokens") if isinstance(usage, Mapping) else None
        if isinstance(counted, (int, float)) and not isinstance(counted, bool) and math.isfinite(counted):
            self.calibration.learn(shape, prompt, int(counted))

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of ``tokens`` tokens may be sent, then take it from the budgets
        (``max_wait`` at most: then it goes)."""
        self.check(tokens)
        self.calibration.sent(tokens)
        async with self._lock:
            waited = 0.0
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
                if self.max_wait is not None:
                    if waited >= self.max_wait - 1e-6:
                        break  # waited as long as anything may: the server's answer decides
                    delay = min(delay, self.max_wait - waited)
                await self._sleep(delay)
                waited += delay
            if self.requests is not None:
                self.requests.level -= 1
            if self.tokens is not None:
                self.tokens.level -= tokens
            if self._widening:
                self._on_wire.append(tokens)

    def ready_in(self, tokens: int, queued: int = 0, queued_tokens: int = 0) -> float:
        """Seconds until one more request of ``tokens`` could go, behind ``queued`` requests (of
        ``queued_tokens`` in all) already waiting here; 0 if at once. Changes nothing (a pool
        asks each endpoint's limiter this to send a query where it can go soonest).

        >>> RateLimiter(rpm=60, burst_seconds=1, clock=lambda: 0.0).ready_in(10, queued=2)
        2.0
        """
        now = self._clock()
        delay = self.paused_until - now
        for bucket, one, ahead in ((self.requests, 1, queued), (self.tokens, tokens, queued_tokens)):
            if bucket is not None:
                one = min(one, bucket.limit)  # as acquire: a full bucket will do for one larger than it
                level = min(max(one, bucket.capacity), bucket.level + max(0.0, now - bucket.stamp) * bucket.rate)
                delay = max(delay, (one + ahead - level) / bucket.rate)
        return max(0.0, delay)

    @property
    def _widening(self) -> bool:
        return self.probing and self.window < self._top

    def pause(self, seconds: float) -> None:
        """A 429: nobody is sent anything for ``seconds``, and the buckets start empty after."""
        now = self._clock()
        self.pauses += 1
        seconds = max(0.0, seconds) if math.isfinite(seconds) or seconds > 0 else 0.0
        if self.max_wait is not None:
            seconds = min(seconds, self.max_wait)
        self.paused_until = max(self.paused_until, now + seconds)
        for bucket in (self.requests, self.tokens):
            if bucket is not None:
                bucket.refill(now, 0)
                bucket.level = min(bucket.level, 0.0)
                bucket.stamp = max(bucket.stamp, self.paused_until)  # no refill while paused
        if self.probing:  # the first 429: the server counts in shorter windows than its headers, or is drained
            self.probing = False
            self.short_windows = self._room > 0
            self._on_wire.clear()
            self._resize(self._base)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Follow a response's ``x-ratelimit-*`` headers (called once for every response, 429s too)."""
        if not self._follow:
            return
        now = self._clock()
        answered = self._on_wire.popleft() if self._on_wire else None
        remains: dict[str, float | None] = {}
        for kind in ("requests", "tokens"):
            limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
            if limit is not None:
                limit = min(limit, MAX_LIMIT) if limit > 0 else None  # sane: positive, finite, bounded
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            bucket = getattr(self, kind)
            if limit and limit > 0:
                if bucket is None:  # holding one second's worth, however wide the window: it has shown no room yet
                    bucket = Bucket(limit, self._base, now, False)
                    bucket.set_limit(limit, self.window)
                    setattr(self, kind, bucket)
                elif limit != bucket.limit and (limit < bucket.limit or not bucket.configured):
                    bucket.refill(now, 0)
                    bucket.set_limit(limit, self.window)
            if remaining is not None:  # between nothing left and the whole limit, whatever it says
                top = limit if limit else bucket.limit if bucket is not None else MAX_LIMIT
                remaining = min(max(0.0, remaining), top)
            remains[kind] = remaining
            if bucket is not None and remaining is not None:
                bucket.refill(now, 0)
                bucket.level = min(bucket.level, remaining)
        self.calibration.witness(now, self.tokens, self.requests, remains["tokens"], remains["requests"])
        if answered is not None:
            self._answered[0] += 1
            self._answered[1] += answered
        if self.probing:
            self._probe(remains)

    def _probe(self, remains: Mapping[str, float | None]) -> None:
        """Slow start: once a window's worth is answered, double the window, within what the server says remains."""
        budgets = [(b, remains[kind], on_wire, done) for kind, b, on_wire, done in (
            ("requests", self.requests, len(self._on_wire), self._answered[0]),
            ("tokens", self.tokens, sum(self._on_wire), self._answered[1])) if b is not None]
        if not budgets or any(rem is None for _, rem, _, _ in budgets):
            self._room = 0.0  # a budget the headers do not report could be anywhere: do not widen on a guess
            return
        self.probed = True
        # What is on the wire was charged after (or as) that remaining was counted; the refill since only adds.
        self._room = min((rem - on_wire - b.level) / b.rate for b, rem, on_wire, _ in budgets)
        if not self._widening or not any(done >= b.rate * self.window for b, _, _, done in budgets):
            return
        step = min(self.window, self._top - self.window, self._room)
        if step <= 0:
            return
        self._resize(self.window + step)
        for b, _, _, _ in budgets:
            b.level += b.rate * step
        self._answered = [0, 0]
        if not self._widening:
            self._on_wire.clear()  # the top is reached: nothing left to count

    def _resize(self, window: float) -> None:
        self.window = window
        self.max_window = max(self.max_window, window)
        for b in (self.requests, self.tokens):
            if b is not None:
                b.set_limit(b.limit, window)

    def describe(self) -> dict[str, Any]:
        """The burst for meta.json: ``fixed`` (no headers to probe with) or ``probed``, how wide, and
        whether a 429 came although the headers said there was room (the server enforces short windows).

        >>> RateLimiter(rpm=600).describe()["burst"]
        'fixed'
        """
        return {"burst": "probed" if self.probed else "fixed", "burst_seconds": round(self.window, 3),
                "max_burst_seconds": round(self.max_window, 3), "short_windows": self.short_windows,
                "max_wait_seconds": self.max_wait, "calibration": self.calibration.describe()}


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None  # NaN and infinities teach nothing
