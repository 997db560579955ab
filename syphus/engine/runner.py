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
403, no quota, a record that cannot be written) aborts at once. Records are
whole lines either way.

Nothing kills a worker silently: whatever raises while one query is handled
(a plugin, the parser, a value JSON cannot hold) ends in an error record for
that id, with the raw reply when one arrived; a worker that dies anyway stops
the run as failed, so the producer is never left blocked on a full queue.
``max_endpoint_failures`` identical endpoint-level failures in a row (every
query refused with 404, no connection at all) stop the run with a FatalError
(``syphus.engine.failwatch``): those errors are not settled, so a rerun after
the fix sends them again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from syphus.config import RetryConfig
from syphus.engine.cost import Budget, has_usage
from syphus.engine.failwatch import FailWatch
from syphus.dataset import AbstractDataset
from syphus.errors import FatalError, ItemError, RateLimited, TransientError, UserError
from syphus.engine.attachment import Attacher
from syphus.engine.pool import CIRCUIT_KINDS, Member, Pool
from syphus.engine.query import Query, RepairRequests, Requests, resumed
from syphus.engine.record import answer_record, error_record, query_meta, usage_tokens
from syphus.engine.repair import add_usage, why_repair
from syphus.engine.stats import RunStatus, Stats
from syphus.engine.retry import capped_hint, retry_policy
from syphus.engine.store import RunStore
from syphus.engine.structure import Structure, Structures

__all__ = ["Runner", "Stats"]

log = logging.getLogger("syphus")


class _Stopped(Exception):
    """The run is stopping: leave this query for the next run."""


class _OverBudget(_Stopped):
    """Sending this query could pass --max-cost: stop dispatching."""


class Runner:
    """Runs queries through the pool's endpoints with ``num_threads`` requests in flight in all."""

    def __init__(self, dataset: AbstractDataset, pool: Pool, store: RunStore, *,
                 num_threads: int, retry: RetryConfig, drain_timeout: float = 60.0,
                 skip: Callable[[str], bool] = lambda qid: False, source: str = "dataset",
                 budget: Budget | None = None, max_endpoint_failures: int = 20,
                 structure: Structure | None = None, attacher: Attacher | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = asyncio.sleep, repairs: int = 1):
        self.dataset = dataset
        self.pool = pool
        self.store = store
        self.num_threads = num_threads
        self.retry_cfg = retry
        self.drain_timeout = drain_timeout
        self.skip = skip
        self.source = source
        self.budget = budget
        if structure is None or isinstance(structure, Structure):  # one decision for all: each endpoint its own
            mode, form = (structure.mode, structure.form) if structure is not None else ("text", "openai")
            structure = Structures(mode, {m.name: form for m in pool.members})
        self.structure = structure  # each endpoint's reply format (JSON or text) and schema form
        self.attacher = attacher  # --images: each query's images looked up and sent with it
        self.repairs = repairs  # --repairs: how many times a broken reply is asked again (syphus.engine.repair)
        self.over_budget = False
        self.clock = clock
        self.sleep = sleep
        self.stats = Stats(started=clock())
        self.watch = FailWatch(max_endpoint_failures,
                               [str(m.describe_endpoint.get("url") or m.name) for m in pool.members])
        self.fatal: FatalError | None = None
        self.user_error: UserError | None = None
        self.crash: BaseException | None = None
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
        self.stopping = self.stats.stopping = True
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
    async def run(self, items: Iterable[dict[str, Any]]) -> RunStatus:
        """Process ``items``; how the session ended (complete, interrupted, budget or failed)."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=2 * self.num_threads)
        self._workers = [asyncio.create_task(self._work(queue)) for _ in range(self.num_threads)]
        for task in self._workers:
            task.add_done_callback(self._end_of_worker)
        self._producer = asyncio.create_task(self._produce(items, queue))
        try:
            await asyncio.gather(self._producer, *self._workers, return_exceptions=True)
        finally:
            if self._drain_timer is not None:
                self._drain_timer.cancel()
        if self.fatal is None and self.user_error is None and self.crash is None and not self.stopping:
            # nothing came back but the endpoint's failures: not a complete run, however few the queries
            self.fatal = self.watch.all_failed(self.stats.answered, self.stats.errors)
        if self.fatal is not None or self.user_error is not None or self.crash is not None:
            return RunStatus.FAILED
        if self.over_budget:
            return RunStatus.BUDGET
        return RunStatus.INTERRUPTED if self.stopping else RunStatus.COMPLETE

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

    def _end_of_worker(self, task: asyncio.Task) -> None:
        """A worker that ended while others still need it: fail the run, so nothing waits on it."""
        if task.cancelled() or self.stopping:
            return
        exc = task.exception()
        if exc is not None and self.crash is None and self.fatal is None:
            self.crash = exc
            log.error("a worker died: %s: %s; stopping (the run is resumable)", type(exc).__name__, exc)
            self.abort()

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
            if self.fatal is None:
                self.fatal = e
            self.request_stop()  # replies already on their way land (bounded by the drain timeout): paid for

    # --- one query ----------------------------------------------------------------
    def _error(self, qid: str, kind: str, message: str, status: int | None, q: Query) -> None:
        record = error_record(qid, kind, message, status, q.sent, raw=q.raw, estimated=q.estimated())
        if q.endpoint is not None:
            record["endpoint"] = q.endpoint
        self.store.write_error(record)
        self.stats.errors += 1
        self._watch_endpoint(kind, message)

    def _watch_endpoint(self, kind: str | None, message: str = "") -> None:
        """Count identical endpoint-level failures in a row; too many stop the run (exit 3)."""
        down = self.watch.failed(kind, message)
        if down is not None and self.fatal is None:
            self.fatal = down
            self.abort()

    def _on_retry(self, state: Any) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.debug("retrying after %s (attempt %d)", exc, state.attempt_number)

    async def _send(self, plan: Requests, q: Query, asked: str = "json", prefer: Member | None = None) -> Any:
        """Send the query (in ``asked`` format, or text where the endpoint refused the schema) under the retry
        policy; its reply. ``q.member`` and ``q.fmt`` say where the last request went and in what format."""
        bodies: dict[tuple[str, str], bytes] = {}  # encoded once per endpoint and format (each its own settings)
        tokens = plan.paced(asked)
        task = asyncio.current_task()
        cap = self.retry_cfg.max_seconds
        failed_on: Member | None = None  # where the last attempt failed: the next goes elsewhere if it can
        async for attempt in retry_policy(self.retry_cfg, sleep=self.sleep, before_sleep=self._on_retry):
            with attempt:
                if self.stopping:
                    raise _Stopped
                # ``prefer`` only for the first attempt: a retry after a failure there goes where it fits
                member = await self.pool.take(tokens, avoid=failed_on, prefer=prefer if failed_on is None else None)
                completion = member.completion_budget
                hold: float | None = 0.0
                try:
                    if self.stopping:
                        raise _Stopped
                    fmt = plan.format_for(member, asked)
                    req, prompt_tokens = plan.request(member, fmt)  # all in this endpoint's terms
                    messages = req.messages
                    hold = self.budget.reserve(prompt_tokens, completion, member.price) if self.budget else 0.0
                    if hold is None:
                        raise _OverBudget
                    body = bodies.get((member.name, fmt))
                    if body is None:
                        body = bodies[(member.name, fmt)] = member.client.body(messages, req.fields)
                    # write-ahead: on disk before the bytes leave, so a request no record settles is charged later
                    self.store.reserve(plan.item["id"], prompt_tokens, completion)
                except BaseException:
                    if hold and self.budget is not None:  # reserved, then not sent: the hold goes back
                        self.budget.settle(hold, None, billed=False)
                    self.pool.unsend(member)
                    raise
                self._on_wire.add(task)
                self.stats.in_flight += 1
                self.stats.requests += 1
                q.sent += 1
                q.endpoint, q.member, q.fmt = member.name, member, fmt
                reply, billed, kind, why = None, True, None, ""  # cancelled on the wire: the server may still bill it
                try:
                    reply = await member.client.complete(messages, body)
                except RateLimited as e:
                    billed, kind, why = False, e.kind, str(e)
                    self.stats.rate_limited += 1
                    e.retry_after = capped_hint(e.retry_after, cap)
                    member.limiter.pause(e.retry_after if e.retry_after is not None else 1.0)
                    if self.pool.alternative(member):
                        e.retry_after = 0.0  # only this endpoint waits: the query goes to another at once
                    raise
                except FatalError as e:  # 401/403/no quota: the run's end only when no other endpoint is left
                    billed, kind, why = False, "refused", str(e)
                    if not self.pool.circuit:
                        raise
                    self.pool.remove(member, str(e))
                    if not self.pool.any_left():
                        raise
                    raise TransientError(f"endpoint {member.name} was removed ({e})", kind="refused",
                                         retry_after=0.0) from None
                except (TransientError, ItemError) as e:
                    billed, kind, why = e.maybe_billed, e.kind, str(e)
                    if self.pool.circuit and e.kind in CIRCUIT_KINDS and self.pool.alternative(member):
                        # this endpoint is in trouble (the circuit counts it): another takes the query at once
                        raise TransientError(f"{member.name}: {e}", kind=e.kind, status=e.status, retry_after=0.0,
                                             maybe_billed=e.maybe_billed) from None
                    raise
                finally:
                    self.stats.in_flight -= 1
                    self._on_wire.discard(task)
                    self.pool.done(member, ok=reply is not None, kind=kind, reason=why)
                    usage = reply.usage if reply is not None else None
                    if usage is not None:
                        member.limiter.learn(plan.shape(fmt), prompt_tokens, usage)
                    if billed and not has_usage(usage):
                        q.estimated_prompt += prompt_tokens
                        q.estimated_completion += completion
                    cost = self.budget.settle(hold, usage, billed=billed, price=member.price) if self.budget else 0.0
                    self.pool.charge(member, usage_tokens(usage), cost)
                failed_on = None if reply is not None else member
        return reply

    async def _process(self, item: dict[str, Any]) -> None:
        """Handle one query; whatever goes wrong ends in a record for its id (or a stopped run)."""
        qid = item["id"]
        q = Query()
        try:
            await self._handle(item, q)
        except (_Stopped, FatalError, asyncio.CancelledError):
            raise
        except ItemError as e:  # a record JSON cannot hold, raised by the store before writing
            self._error(qid, e.kind, str(e), e.status, q)
        except Exception as e:
            self._error(qid, "internal", f"{type(e).__name__}: {e} (a bug: please report it; "
                        "--retry_errors sends this query again)", None, q)

    async def _as_text(self, plan: Requests, q: Query, refusal: ItemError, member: Member) -> Any:
        """A JSON request ``member`` refused with a 400 before it took JSON, sent again as text to learn why.

        It goes to the same endpoint when that one can take it. Taken as text there, the schema was what
        the endpoint refused: text for that endpoint. Refused as text too, the 400 is this query's own
        (the schema is not the problem): JSON stays.
        """
        structure = self.structure[member.name]
        try:
            reply = await self._send(plan, q, asked="text", prefer=member)
        except ItemError as e:
            if e.status in (400, 422) and q.member is member:
                structure.confirm()
            raise
        if q.member is member:
            structure.refused(str(refusal))
        return reply

    async def _handle(self, item: dict[str, Any], q: Query) -> None:
        qid = item["id"]
        fmt = self.structure.current()  # JSON while any endpoint may take it
        first = next((m for m in self.pool.members if self.structure[m.name].current() == fmt), self.pool.members[0])
        started = self.clock()
        try:
            req = self.structure[first.name].request(self.dataset, item, fmt)
        except Exception as e:
            self._error(qid, "plugin", f"build_messages raised {type(e).__name__}: {e}", None, q)
            return
        query_meta(item)  # a value JSON cannot hold fails here, before anything is paid
        attached = None
        if self.attacher is not None:
            try:
                frames, missing = await self.attacher.read(item)  # file reads, decodes: off the loop
                attached = self.attacher.place(self.dataset, item, req.messages, frames, missing)
            except ItemError as e:  # images missing from the file, a request over the size limit
                self._error(qid, e.kind, str(e), None, q)
                return
            except Exception as e:
                self._error(qid, "plugin", f"attach_images raised {type(e).__name__}: {e}", None, q)
                return
            req = req._replace(messages=attached.messages)
        plan = Requests(self, item, attached)
        plan.seed(fmt, self.structure[first.name].form, req)
        earlier = self.store.pending.get(qid) if self.repairs else None
        try:
            self.pool.check(plan.tokens(fmt))
            try:
                if earlier is not None:  # a repair a crash cut short: what was paid for goes on from there
                    reply = resumed(earlier, q)
                else:
                    reply = await self._send(plan, q, fmt)
            except ItemError as e:
                member = q.member
                if not (member is not None and e.status in (400, 422)
                        and self.structure[member.name].undecided(q.fmt)):
                    raise
                if self.structure.mode == "json":
                    self.structure[member.name].refused(str(e))  # raises: --reply json stops the run
                reply = await self._as_text(plan, q, e, member)
            else:
                if q.fmt == "json" and q.member is not None:
                    self.structure[q.member.name].confirm()
        except _OverBudget:
            if not self.over_budget:
                self.over_budget = True
                log.warning("stopping: the next request could pass --max-cost")
                self.request_stop()
            return
        except _Stopped:
            return
        except (ItemError, TransientError) as e:
            self._error(qid, e.kind, str(e), e.status, q)
            return
        q.raw = reply.text
        self._watch_endpoint(None)
        record, valid = answer_record(self.dataset, item, reply.text, reply.finish_reason, reply.usage,
                                      reply.model, q.sent, estimated=q.estimated(), reply_format=q.fmt)
        pending: BaseException | None = None
        if self.repairs and why_repair(record, q.fmt, reply.finish_reason) is not None:
            record, valid, reply, pending = await self._repair(item, plan, reply, record, valid, q,
                                                               list(earlier.get("repairs") or []) if earlier else [])
            if pending is not None:  # stopped before the repair answered: repairs.jsonl holds what was paid for,
                self._stop_for(pending)  # and the next run goes on with the repair
                return
        record["endpoint"] = q.endpoint
        if attached is not None:
            record["images"] = attached.image_ids
            if attached.missing:
                record["images_missing"] = attached.missing
            self.stats.images += len(attached.frames)
            self.stats.image_tokens += plan.image_tokens(q.member)
        record["timings"] = {"latency_s": round(reply.latency, 4), "total_s": round(self.clock() - started, 4)}
        self.store.write_answer(record, valid=valid)
        self.stats.count_answer(record)

    def _stop_for(self, stop: BaseException) -> None:
        """What a stop that came during a repair means: the cap (stop dispatching), a stop, or raise it on."""
        if isinstance(stop, _OverBudget):
            if not self.over_budget:
                self.over_budget = True
                log.warning("stopping: the next request could pass --max-cost")
                self.request_stop()
        elif not isinstance(stop, _Stopped):
            raise stop

    async def _repair(self, item: dict[str, Any], plan: Requests, reply: Any, record: dict[str, Any], valid: bool,
                      q: Query, earlier: list[dict[str, Any]]) -> tuple[dict[str, Any], bool, Any, BaseException | None]:
        """Ask again for a broken reply, up to ``repairs`` times; the record to write, and any stop that came.

        The repair goes to the endpoint that gave the broken reply when it can take it, in the same
        format. The reply kept is the repaired one unless it gave fewer pairs than the one before;
        every earlier reply stays in the record under ``repairs``, with why it was asked again. A
        repair request that fails leaves the record of what was already paid for; a stop (Ctrl-C, the
        cap, a fatal error) leaves no record: the broken reply is in repairs.jsonl and the next run
        goes on with its repair.
        """
        pending: BaseException | None = None
        fmt = q.fmt
        for _ in range(self.repairs - len(earlier)):
            why = why_repair(record, fmt, reply.finish_reason)
            if why is None:
                break
            self.stats.repairs += 1
            self.store.write_pending({"id": item["id"], "raw": reply.text, "finish_reason": reply.finish_reason,
                                      "model": reply.model, "usage": record.get("usage"), "reply_format": fmt,
                                      "attempts": q.sent, "endpoint": q.endpoint, "reason": why,
                                      "repairs": earlier, **({"estimated_usage": q.estimated()} if q.estimated()
                                                             else {})})
            try:
                again = await self._send(RepairRequests(plan, fmt, reply.text, why), q, fmt, prefer=q.member)
            except (_Stopped, asyncio.CancelledError, FatalError) as e:
                pending = e
                break
            except (ItemError, TransientError) as e:
                record.setdefault("problems", []).append(f"the repair request failed: {e}")
                break
            usage = add_usage(record.get("usage"), again.usage)
            fixed, ok = answer_record(self.dataset, item, again.text, again.finish_reason, usage, again.model, q.sent,
                                      estimated=q.estimated(), reply_format=fmt)
            earlier.append({"raw": reply.text, "reason": why, "finish_reason": reply.finish_reason})
            if len(fixed["pairs"]) < len(record["pairs"]):  # worse than before: keep the earlier reply's pairs
                record["usage"], record["attempts"] = usage, q.sent
                record.setdefault("problems", []).append(f"a repair came back with fewer pairs ({why})")
                earlier[-1] = {"raw": again.text, "reason": "kept the earlier reply", "finish_reason":
                               again.finish_reason}
                break
            record, valid, reply = fixed, ok, again
            self.stats.repaired += bool(ok and not why_repair(fixed, fmt, again.finish_reason))
        if earlier:
            record["repairs"] = earlier
        if q.estimated():
            record["estimated_usage"] = q.estimated()
        return record, valid, reply, pending
