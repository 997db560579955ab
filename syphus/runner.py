"""The asyncio worker pool: query inputs in, one settled record per query out.

``num_threads`` workers take items from a bounded queue, so memory stays flat
however many inputs stream in. Each worker waits for the rate limiter, sends
the request under the retry policy, parses the reply and hands the record to
the store, which writes it at once. Every query ends in exactly one of
pairs / invalid / errors, or (if the run stops first) in none, to be done on
resume.

Stopping: ``request_stop()`` (Ctrl-C, SIGTERM) takes no new work and lets
requests already on the wire finish, for at most ``drain_timeout`` seconds;
``abort()`` (a second Ctrl-C) cancels everything at once. A FatalError (401,
403, no quota) aborts at once. Records are whole lines either way.

Imports: syphus.client, syphus.config, syphus.dataset, syphus.errors,
syphus.limits, syphus.retry, syphus.store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from syphus.client import ChatClient
from syphus.config import RetryConfig
from syphus.cost import Budget
from syphus.dataset import AbstractDataset
from syphus.errors import FatalError, ItemError, RateLimited, TransientError, UserError
from syphus.limits import RateLimiter, estimate_tokens
from syphus.retry import retry_policy
from syphus.store import RunStore

log = logging.getLogger("syphus")


class _Stopped(Exception):
    """The run is stopping: leave this query for the next run."""


class _OverBudget(_Stopped):
    """Sending this query could pass --max-cost: stop dispatching."""


@dataclass
class Stats:
    """Live counters of this session, read by the progress display."""

    total: int | None = None
    skipped: int = 0
    answered: int = 0
    pairs: int = 0
    invalid: int = 0
    errors: int = 0
    truncated: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def settled(self) -> int:
        return self.answered + self.errors

    def count_answer(self, record: dict[str, Any]) -> None:
        """Count one record written to pairs.jsonl or invalid.jsonl."""
        usage = record.get("usage") or {}
        self.answered += 1
        self.pairs += len(record["pairs"])
        self.invalid += not record["pairs"]
        self.truncated += bool(record.get("truncated"))
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)


def now_iso() -> str:
    """The current UTC time as records carry it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def error_record(qid: str, kind: str, message: str, status: int | None, attempts: int) -> dict[str, Any]:
    """The errors.jsonl record of a query that failed for good."""
    return {"id": qid, "kind": kind, "message": message, "status": status, "attempts": attempts, "at": now_iso()}


def answer_record(dataset: AbstractDataset, item: dict[str, Any], text: str | None, finish_reason: str | None,
                  usage: dict[str, Any], model: str | None, attempts: int) -> tuple[dict[str, Any], bool]:
    """The record of one answered query, parsed by its dataset, and whether it has pairs.

    The raw text is always kept; a parser that raises leaves the record invalid with the
    reason, to be fixed and re-parsed with ``--reparse`` without paying again.
    """
    try:
        result = dataset.parse_for(item, text or "", finish_reason)
        pairs, problems, truncated, reason = result.pairs, result.problems, result.truncated, result.reason
    except Exception as e:
        pairs, problems, truncated = [], [], finish_reason == "length"
        reason = f"parse_response raised {type(e).__name__}: {e} (fix it, then run with --reparse)"
    record: dict[str, Any] = {
        "id": item["id"], "pairs": pairs, "raw": text, "finish_reason": finish_reason, "truncated": truncated,
        "problems": problems, "model": model, "usage": usage, "attempts": attempts, "at": now_iso(),
    }
    extras = {k: v for k, v in item.items() if k not in ("id", "sentences")}
    if extras:  # what the plugin attached to the query (image_ids, ...), kept for export
        record["meta"] = extras
    if not pairs:
        record["reason"] = reason
    return record, bool(pairs)


class Runner:
    """Runs queries through the endpoint with ``num_threads`` requests in flight."""

    def __init__(self, dataset: AbstractDataset, client: ChatClient, limiter: RateLimiter, store: RunStore, *,
                 num_threads: int, max_tokens: int, retry: RetryConfig, drain_timeout: float = 60.0,
                 skip: Callable[[str], bool] = lambda qid: False, source: str = "dataset",
                 budget: Budget | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = asyncio.sleep):
        self.dataset = dataset
        self.client = client
        self.limiter = limiter
        self.store = store
        self.num_threads = num_threads
        self.max_tokens = max_tokens
        self.retry_cfg = retry
        self.drain_timeout = drain_timeout
        self.skip = skip
        self.source = source
        self.budget = budget
        self.over_budget = False
        self.clock = clock
        self.sleep = sleep
        self.stats = Stats(started=clock())
        self.fatal: FatalError | None = None
        self.user_error: UserError | None = None
        self.stopping = False
        self.aborted = False
        self._workers: list[asyncio.Task] = []
        self._on_wire: set[asyncio.Task] = set()
        self._producer: asyncio.Task | None = None
        self._drain_timer: asyncio.TimerHandle | None = None

    # --- control ------------------------------------------------------------------
    def request_stop(self) -> None:
        """Take no new work; requests on the wire finish (bounded by ``drain_timeout``)."""
        if self.stopping:
            return
        self.stopping = True
        if self._producer is not None:
            self._producer.cancel()
        for task in self._workers:
            if task not in self._on_wire:
                task.cancel()
        if self._on_wire:
            self._drain_timer = asyncio.get_running_loop().call_later(self.drain_timeout, self.abort)

    def abort(self) -> None:
        """Cancel everything now; nothing half-written is left behind."""
        self.stopping = self.aborted = True
        if self._producer is not None:
            self._producer.cancel()
        for task in self._workers:
            task.cancel()

    # --- the pool -----------------------------------------------------------------
    async def run(self, items: Iterable[dict[str, Any]]) -> str:
        """Process ``items``; returns "complete", "interrupted" or "failed"."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=2 * self.num_threads)
        self._workers = [asyncio.create_task(self._work(queue)) for _ in range(self.num_threads)]
        self._producer = asyncio.create_task(self._produce(items, queue))
        try:
            await asyncio.gather(self._producer, *self._workers, return_exceptions=True)
        finally:
            if self._drain_timer is not None:
                self._drain_timer.cancel()
        if self.fatal is not None or self.user_error is not None:
            return "failed"
        if self.over_budget:
            return "budget"
        return "interrupted" if self.stopping else "complete"

    async def _produce(self, items: Iterable[dict[str, Any]], queue: asyncio.Queue) -> None:
        try:
            for item in items:
                if self.skip(item["id"]):
                    self.stats.skipped += 1
                    if self.stats.skipped % 1024 == 0:
                        await asyncio.sleep(0)  # a long resume scan must not starve workers and signals
                    continue
                await queue.put(item)
        except UserError as e:
            self.user_error = e
            self.request_stop()
            return
        except asyncio.CancelledError:
            return
        except Exception as e:  # plugin code running lazily inside a generator
            self.user_error = UserError(f"{self.source}: reading query inputs failed: {type(e).__name__}: {e}")
            self.request_stop()
            return
        for _ in self._workers:
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue) -> None:
        try:
            while not self.stopping:
                item = await queue.get()
                if item is None or self.stopping:
                    return
                await self._process(item)
        except asyncio.CancelledError:
            return
        except FatalError as e:
            self.fatal = e
            self.abort()

    # --- one query ----------------------------------------------------------------
    def _error(self, qid: str, kind: str, message: str, status: int | None, attempts: int) -> None:
        self.store.write_error(error_record(qid, kind, message, status, attempts))
        self.stats.errors += 1

    def _on_retry(self, state: Any) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.debug("retrying after %s (attempt %d)", exc, state.attempt_number)

    async def _send(self, messages: list[dict[str, str]], prompt_tokens: int) -> tuple[Any, int]:
        cost = prompt_tokens + self.max_tokens
        attempts = 0
        task = asyncio.current_task()
        async for attempt in retry_policy(self.retry_cfg, sleep=self.sleep, before_sleep=self._on_retry):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                if self.stopping:
                    raise _Stopped
                await self.limiter.acquire(cost)
                if self.stopping:
                    raise _Stopped
                hold = self.budget.reserve(prompt_tokens, self.max_tokens) if self.budget else 0.0
                if hold is None:
                    raise _OverBudget
                self._on_wire.add(task)
                self.stats.in_flight += 1
                self.stats.requests += 1
                reply = None
                try:
                    reply = await self.client.complete(messages)
                except RateLimited as e:
                    self.stats.rate_limited += 1
                    self.limiter.pause(e.retry_after if e.retry_after is not None else 1.0)
                    raise
                finally:
                    self.stats.in_flight -= 1
                    self._on_wire.discard(task)
                    if self.budget:
                        self.budget.settle(hold, reply.usage if reply is not None else None)
        return reply, attempts

    async def _process(self, item: dict[str, Any]) -> None:
        qid = item["id"]
        started = self.clock()
        try:
            messages = self.dataset.build_messages(item)
        except Exception as e:
            self._error(qid, "plugin", f"build_messages raised {type(e).__name__}: {e}", None, 0)
            return
        prompt_tokens = estimate_tokens(messages)
        attempts = 0
        try:
            self.limiter.check(prompt_tokens + self.max_tokens)
            reply, attempts = await self._send(messages, prompt_tokens)
        except _OverBudget:
            if not self.over_budget:
                self.over_budget = True
                log.warning("stopping: the next request could pass --max-cost")
                self.request_stop()
            return
        except _Stopped:
            return
        except (ItemError, TransientError) as e:
            self._error(qid, e.kind, str(e), e.status, attempts or self.retry_cfg.max_attempts)
            return
        record, valid = answer_record(self.dataset, item, reply.text, reply.finish_reason, reply.usage,
                                      reply.model, attempts)
        record["timings"] = {"latency_s": round(reply.latency, 4), "total_s": round(self.clock() - started, 4)}
        self.store.write_answer(record, valid=valid)
        self.stats.count_answer(record)
