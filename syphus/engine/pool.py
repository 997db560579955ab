"""Pool: the endpoints a run sends to, each with its own limiter, in-flight count, state and figures.

One endpoint (today's flags and variables) is a pool of one. With ``endpoints:`` in the config
a query goes to the endpoint that can take it soonest: each member's limiter says how long
until one more request fits behind those already waiting for it (``RateLimiter.ready_in``),
and ties go to the member with the least in flight for its ``weight``. A 429 pauses only
that member's limiter.

A member whose requests fail at the transport or server level ``cool_after`` times in a row
(connection, timeout, 5xx, a malformed body, 404) *cools down*: nothing is sent to it for
``cool_seconds``, then one probe request; a success makes it active again, a failure cools
it again for twice as long (up to ``cool_max_seconds``). A member whose key is refused
(401/403) or whose quota is gone is *removed* for the run with a warning; when none is left
the run stops (exit 3). The circuit applies to pools of two or more: a single endpoint keeps
the plain retry policy, as it has nowhere else to send.

What a request counts (its prompt tokens: text, schema, images) may differ by member, as each
counts in its own model's terms: ``choose``, ``take`` and ``check`` take either one number or a
function of the member (``Tokens``).

The pool never retries by itself: it says where the next attempt goes. The one retry policy
(``syphus.engine.retry``) decides whether there is a next attempt; a failure on one member
while another can take the query is retried at once, elsewhere.

>>> from syphus.engine.limits import RateLimiter
>>> fast, slow = Member("fast", None, RateLimiter(rpm=600)), Member("slow", None, RateLimiter(rpm=60))
>>> pool = Pool([fast, slow])
>>> [pool.choose(100).name for _ in range(1)]
['fast']
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from syphus.engine.limits import RateLimiter
from syphus.errors import FatalError, ItemError

log = logging.getLogger("syphus")

ACTIVE, COOLING, REMOVED = "active", "cooling", "removed"
# failures that say the endpoint, not the query, is in trouble: they count toward cooling it down
CIRCUIT_KINDS = frozenset({"connection", "timeout", "server_error", "malformed", "not_found", "http_408"})


def _tokens_of(tokens: Tokens, m: Member) -> int:
    return tokens(m) if callable(tokens) else tokens


@dataclass
class Member:
    """One endpoint of the pool: its client, limiter, price row and what it has done this session."""

    name: str
    client: Any  # a ChatClient (None in doctests)
    limiter: RateLimiter
    weight: float = 1.0
    price: Any = None  # syphus.engine.cost.Price, or None when the table has no row for it
    model: str | None = None  # the model its tokens (images included) are counted as
    describe_endpoint: dict[str, Any] = field(default_factory=dict)
    key_env: str | None = None  # where its key comes from, for messages about a refused key
    state: str = ACTIVE
    in_flight: int = 0
    waiting: int = 0  # requests waiting for this member's limiter
    waiting_tokens: int = 0
    failures: int = 0  # circuit failures in a row
    cool_until: float = 0.0
    cool_for: float = 0.0
    probing: bool = False  # a cooled member's one probe request is on the wire
    reason: str | None = None  # why it cools or was removed
    requests: int = 0
    rate_limited: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def completion_budget(self) -> int:
        return self.client.completion_budget if self.client is not None else 0

    def figures(self) -> dict[str, Any]:
        """What meta.json and the progress line show of this member."""
        return {"name": self.name, **self.describe_endpoint, "state": self.state, "reason": self.reason,
                "requests": self.requests, "rate_limited": self.rate_limited, "errors": self.errors,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": round(self.cost_usd, 6), "weight": self.weight,
                "limits": self.limiter.describe()}


Tokens = int | Callable[[Member], int]  # a request's prompt tokens, the same for all or as each member counts them


class Pool:
    """The members a run dispatches to; see the module docstring."""

    def __init__(self, members: Sequence[Member], *, cool_after: int = 3, cool_seconds: float = 10.0,
                 cool_max_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = asyncio.sleep):
        if not members:
            raise ValueError("a pool needs at least one endpoint")
        self.members = list(members)
        self.cool_after = cool_after
        self.cool_seconds = cool_seconds
        self.cool_max_seconds = cool_max_seconds
        self.clock = clock
        self.sleep = sleep
        self.circuit = len(self.members) > 1
        self._changed: asyncio.Event | None = None

    # --- which member -------------------------------------------------------------------
    def _live(self) -> list[Member]:
        return [m for m in self.members if m.state != REMOVED]

    def _wait(self, m: Member, tokens: Tokens, now: float) -> float:
        cost = _tokens_of(tokens, m) + m.completion_budget
        limiter = m.limiter.ready_in(cost, m.waiting, m.waiting_tokens)
        if m.state == COOLING:
            if m.probing:
                return float("inf")  # its one probe is out: nothing else until it answers
            return max(m.cool_until - now, limiter)
        return limiter

    def choose(self, tokens: Tokens, avoid: Member | None = None, prefer: Member | None = None) -> Member:
        """The member that can take a request of ``tokens`` prompt tokens soonest (FatalError: none left).

        ``prefer`` is taken whenever it is active (the query must learn something of that endpoint).
        """
        live = self._live()
        if not live:
            raise FatalError("every endpoint of the pool was removed (" + "; ".join(
                f"{m.name}: {m.reason}" for m in self.members) + "); fix the keys or quotas, then run the same "
                "command again to resume", None)
        if prefer is not None and prefer.state == ACTIVE:
            return prefer
        now = self.clock()
        options = [m for m in live if m is not avoid] or live
        return min(options, key=lambda m: (round(self._wait(m, tokens, now), 3), m.in_flight / m.weight, -m.weight))

    def any_left(self) -> bool:
        """Whether any member is not removed."""
        return bool(self._live())

    def check(self, tokens: Tokens) -> None:
        """ItemError ``too_large`` if no member's configured token budget can ever hold the request."""
        error = None
        for m in self._live():
            try:
                m.limiter.check(_tokens_of(tokens, m) + m.completion_budget)
                return
            except ItemError as e:
                error = e
        if error is not None:
            raise error

    def alternative(self, to: Member) -> bool:
        """Whether another member could take a query now or soon (active, not ``to``)."""
        return any(m is not to and m.state == ACTIVE for m in self.members)

    async def take(self, tokens: Tokens, avoid: Member | None = None, prefer: Member | None = None) -> Member:
        """Choose a member and wait for its limiter; the caller sends, then calls ``done``."""
        while True:
            m = self.choose(tokens, avoid, prefer)
            now = self.clock()
            if m.state == COOLING:
                if m.probing or m.cool_until > now:
                    await self._until_change(max(0.0, m.cool_until - now) if not m.probing else None)
                    continue
                m.probing = True  # the one probe of a cooled member
            cost = _tokens_of(tokens, m) + m.completion_budget
            m.waiting += 1
            m.waiting_tokens += cost
            try:
                await m.limiter.acquire(cost)
            except BaseException:
                if m.probing and m.state == COOLING:
                    m.probing = False
                raise
            finally:
                m.waiting -= 1
                m.waiting_tokens -= cost
            if m.state == REMOVED:  # removed while this request waited: choose again
                continue
            m.in_flight += 1
            m.requests += 1
            return m

    def unsend(self, m: Member) -> None:
        """A request ``take`` gave ``m`` that was not sent after all (the run stopped, the budget said no)."""
        m.in_flight -= 1
        m.requests -= 1
        if m.probing:
            m.probing = False
            self._notify()

    async def _until_change(self, seconds: float | None) -> None:
        """Wait ``seconds`` (None: until a member changes state), whichever comes first."""
        if self._changed is None:
            self._changed = asyncio.Event()
        event = self._changed
        if seconds is None:
            await event.wait()
            return
        tasks = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.sleep(seconds))}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    def _notify(self) -> None:
        event, self._changed = self._changed, None
        if event is not None:
            event.set()

    # --- what happened ----------------------------------------------------------------------
    def done(self, m: Member, *, ok: bool, kind: str | None = None, reason: str = "") -> None:
        """A request to ``m`` ended: ``ok`` (an answer came), or failed with error ``kind``."""
        m.in_flight -= 1
        if ok:
            if m.state == COOLING:
                log.warning("endpoint %s answers again: active", m.name)
                m.state, m.reason = ACTIVE, None
                self._notify()
            m.failures, m.cool_for, m.probing = 0, 0.0, False
            return
        m.errors += 1
        if kind == "rate_limited":
            m.rate_limited += 1
        if not self.circuit or kind not in CIRCUIT_KINDS:
            if m.probing:
                m.probing = False  # its probe failed for another reason: the next one may go
                self._notify()
            return
        m.failures += 1
        if m.probing or (m.state == ACTIVE and m.failures >= self.cool_after):
            m.cool_for = min(self.cool_max_seconds, m.cool_for * 2 if m.cool_for else self.cool_seconds)
            m.cool_until = self.clock() + m.cool_for
            if m.state != COOLING:
                log.warning("endpoint %s failed %d requests in a row (%s): cooling down for %gs; its queries go "
                            "to the others", m.name, m.failures, kind, m.cool_for)
            m.state, m.reason, m.probing = COOLING, f"{kind}: {reason}"[:200], False
            self._notify()

    def remove(self, m: Member, reason: str) -> None:
        """Take ``m`` out for the run (its key was refused, its quota is gone)."""
        if m.state == REMOVED:
            return
        if m.key_env:
            reason += f" (endpoint {m.name} reads its key from {m.key_env})"
        m.state, m.reason = REMOVED, reason[:300]
        left = len(self._live())
        log.warning("endpoint %s removed for this run: %s (%d left)", m.name, reason, left)
        self._notify()

    def charge(self, m: Member, usage_tokens: tuple[int, int], cost: float) -> None:
        """Count what one answered request of ``m`` used and cost."""
        m.prompt_tokens += usage_tokens[0]
        m.completion_tokens += usage_tokens[1]
        m.cost_usd += cost

    def describe(self) -> list[dict[str, Any]]:
        return [m.figures() for m in self.members]
