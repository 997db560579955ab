"""Batch: a run through the OpenAI (or Azure OpenAI) Batch API, resumable at any instant.

Queries are written as request files (``custom_id`` = query id) that stay within
the API's limits (requests and bytes per file, and the enqueued-token budget),
uploaded, and turned into batches; finished batches are downloaded and settled
into the same ``pairs.jsonl`` / ``invalid.jsonl`` / ``errors.jsonl`` as online
mode. Failed and expired requests go into new batches, a bounded number of times.

Every step is recorded in ``batch/state.jsonl`` (append-only, each event written
whole and fsynced before the next step is taken), so a process killed anywhere
resumes without sending anything twice: a file uploaded but not recorded is found
again by its name, a batch created but not recorded by its input file, a collected
batch is never settled twice, and an event torn by a crash mid-write is moved to
``state.jsonl.torn`` on the next open. Whatever comes back is settled, including
the answers to ids that failed before (``--retry_errors``, or an earlier run's
batch still open): what was paid for is kept.

The Files and Batches routes are ``engine/batchapi`` (the ``openai`` SDK on aiohttp, its own retries
off); the chat completions of online mode do not go through the SDK. The state log is
``engine/batchstate``.

>>> runner = BatchRunner(dataset, api, store, cfg, budget)   # doctest: +SKIP
>>> status = await runner.run(items)                         # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from syphus import kinds
from syphus.engine.client import completion_budget, request_template
from syphus.config import RunConfig
from syphus.engine.batchapi import BatchAPI
from syphus.engine.batchstate import BatchState, Chunk, meta_path  # noqa: F401  (BatchState: imported from here)
from syphus.engine.collect import Collecting
from syphus.engine.cost import Budget
from syphus.durable import sync_dir, sync_file
from syphus.dataset import AbstractDataset
from syphus.errors import FatalError, ItemError, SyphusError, TransientError, UserError
from syphus.idset import IdSet
from syphus.engine.limits import estimate_tokens
from syphus.engine.structure import Structure
from syphus.engine.plan import batch_endpoint
from syphus.engine.workload import load_dataset, run_folder
from syphus.engine.retry import retry_policy
from syphus.engine.record import query_meta
from syphus.engine.repair import repair_messages
from syphus.engine.stats import Stats
from syphus.engine.store import RunStore

log = logging.getLogger("syphus")


# --- the runner -------------------------------------------------------------------
@dataclass
class BatchStats(Stats):
    """The online counters, plus what batches add."""

    planned: int = 0
    redriven: int = 0


class BatchRunner(Collecting):
    """Plans, submits, polls and collects batches until every query is settled (or the run stops)."""

    def __init__(self, dataset: AbstractDataset, api: BatchAPI, store: RunStore, cfg: RunConfig,
                 budget: Budget | None = None, *, skip: Callable[[str], bool] = lambda qid: False,
                 sleep: Callable[[float], Any] = asyncio.sleep, clock: Callable[[], float] = time.monotonic,
                 structure: Structure | None = None, endpoint_name: str = "default", attacher: Any = None):
        self.dataset = dataset
        self.api = api
        self.store = store
        self.cfg = cfg
        self.bcfg = cfg.batch
        self.budget = budget
        self.skip = skip
        self.sleep = sleep
        self.clock = clock
        self.state = BatchState(store.folder / "batch")
        self.stats = BatchStats(started=clock())
        self.template = request_template(api.endpoint, cfg.generation, batch=True)
        self.structure = structure or Structure("text")
        self.endpoint_name = endpoint_name  # the pool endpoint the batches go to (records say it)
        self.attacher = attacher  # --images: the request lines carry each query's images
        self.repairs = cfg.reply.repairs  # broken replies go out again as repair lines (syphus.engine.repair)
        self.reply_format = self.structure.current()  # a batch cannot fall back: the file says what it asks
        self.completion_budget = completion_budget(self.template)  # max_tokens (or its override) times n
        self.url = kinds.get(api.endpoint.kind).batch_url
        self.stopping = False
        self.over_budget = False
        self.fatal: FatalError | None = None
        self.user_error: UserError | None = None
        self._written = IdSet()  # ids settled in this session (the store only knows earlier ones)
        self._extras: dict[str, dict[str, Any]] = {}  # meta of the chunk being written
        self._wake = asyncio.Event()
        if budget is not None:  # holds of batches still open, from before a restart
            budget.reserved += sum(c.reserved for c in self.state.open_chunks())
            lost = sum(c.lost_cost for c in self.state.chunks.values())  # billed, its answers never read
            budget.spent += lost
            budget.estimated += lost

    def request_stop(self) -> None:
        self.stopping = True
        self._wake.set()

    abort = request_stop

    @property
    def drain_timeout(self) -> float:
        return 0.0

    # --- API calls under the one retry policy ----------------------------------------
    async def _api(self, fn, *args: Any) -> Any:
        async for attempt in retry_policy(self.cfg.retry, sleep=self.sleep, before_sleep=self._on_retry):
            with attempt:
                self.stats.requests += 1
                return await fn(*args)

    def _on_retry(self, state: Any) -> None:
        self.stats.retries += 1

    # --- planning ---------------------------------------------------------------------
    def _line(self, qid: str, messages: list[dict[str, Any]], fields: dict[str, Any]) -> str:
        return json.dumps({"custom_id": qid, "method": "POST", "url": self.url,
                           "body": {**self.template, **fields, "messages": messages}}, ensure_ascii=False,
                          allow_nan=False) + "\n"

    def _write_chunk(self, lines: Iterable[tuple[str, str, int, float]], round_: int,
                     parent: int | None) -> Chunk | None:
        """Write request lines ``(qid, line, tokens, cost held)`` into a new chunk file; None if none came.

        What the plugin attached to each query (its ``meta``) goes to a sidecar file beside it,
        since a request line may hold nothing but the request.
        """
        n = self.state.next_n()
        filename = f"syphus-{self.state.run_token}-{n:04d}.jsonl"
        path = self.state.folder / filename
        requests = tokens = 0
        reserved = 0.0
        with path.open("w", encoding="utf-8") as f, meta_path(path).open("w", encoding="utf-8") as side:
            for qid, line, cost, hold in lines:
                f.write(line)
                extras = self._extras.pop(qid, None)
                if extras:
                    side.write(json.dumps({"id": qid, "meta": extras}, ensure_ascii=False) + "\n")
                requests += 1
                tokens += cost
                reserved += hold
            for handle in (f, side):
                sync_file(handle)
        if not requests:
            path.unlink()
            meta_path(path).unlink()
            return None
        sync_dir(self.state.folder)  # the state is about to name the file: it must outlive a power loss
        fmt = self.state.chunks[parent].reply_format if parent is not None else self.reply_format
        self.state.record({"event": "chunk", "n": n, "round": round_, "filename": filename, "requests": requests,
                           "tokens": tokens, "reserved": reserved, "parent": parent, "reply_format": fmt})
        self.stats.planned += requests
        return self.state.chunks[n]

    def _hold(self, prompt: int) -> float | None:
        """Reserve the worst case of one request under --max-cost (0 without a budget)."""
        if self.budget is None:
            return 0.0
        hold = self.budget.reserve(prompt, self.completion_budget)
        if hold is None:
            self.over_budget = True
        return hold

    def _fill(self, source: Iterator[dict[str, Any]], pending: list) -> Iterator[tuple[str, str, int, float]]:
        """Request lines for one chunk, within the file limits, the token budget and --max-cost."""
        b = self.bcfg
        size = tokens = count = 0
        while count < b.max_requests_per_file and not self.stopping:
            item = pending.pop() if pending else next(source, None)
            if item is None:
                return
            qid = item["id"]
            try:
                req = self.structure.request(self.dataset, item, self.reply_format)
                messages, images = req.messages, 0
                if self.attacher is not None:  # the images go in the line: bytes, not tokens, fill a file
                    attached = self.attacher.attach(self.dataset, item, messages)
                    messages, images = attached.messages, attached.tokens
                broken = self.store.pending.get(qid) if self.repairs else None
                if broken is not None:  # its repair never went out (the cap, a crash): the repair, not the query
                    messages = repair_messages(messages, broken.get("raw"), str(broken.get("reason")),
                                               broken.get("reply_format") or self.reply_format)
                prompt = estimate_tokens(messages) + req.schema_tokens + images
                line = self._line(qid, messages, req.fields)
                extras = query_meta(item)
            except ItemError as e:
                self._error(qid, e.kind, str(e), None, 0)
                continue
            except Exception as e:  # one query's plugin fault is that query's error, never the run's
                kind = "unencodable" if isinstance(e, (TypeError, ValueError)) else "plugin"
                self._error(qid, kind, f"building the request raised {type(e).__name__}: {e}", None, 0)
                continue
            if extras:
                self._extras[qid] = extras
            cost = prompt + self.completion_budget
            nbytes = len(line.encode("utf-8"))
            over_tokens = b.max_enqueued_tokens is not None and tokens + cost > b.max_enqueued_tokens
            if size + nbytes > b.max_bytes_per_file or over_tokens:
                if count == 0:  # a single request over the limits can never be sent
                    self._error(qid, "too_large", f"this request (~{cost} tokens, {nbytes} bytes) is over the "
                                                  "batch file size or the enqueued-token budget")
                    continue
                pending.append(item)
                return
            hold = self._hold(prompt)
            if hold is None:
                pending.append(item)
                return
            size += nbytes
            tokens += cost
            count += 1
            yield qid, line, cost, hold

    # --- submitting -------------------------------------------------------------------
    def _enqueued(self) -> int:
        return sum(c.tokens for c in self.state.chunks.values() if c.submitted and not c.finished)

    async def _reconcile(self) -> None:
        """Adopt uploads and batches that happened before a crash but were not recorded."""
        missing_file = [c for c in self.state.open_chunks() if c.file_id is None]
        if missing_file:
            by_name = {f.get("filename"): f for f in await self._api(self.api.files)}
            for c in missing_file:
                if c.filename in by_name:
                    self.state.record({"event": "uploaded", "n": c.n, "file_id": by_name[c.filename]["id"],
                                       "adopted": True})
        missing_batch = [c for c in self.state.open_chunks() if c.file_id and not c.batch_id]
        if missing_batch:
            by_input = {}
            for b in await self._api(self.api.batches):
                by_input.setdefault(b.get("input_file_id"), b)
            for c in missing_batch:
                found = by_input.get(c.file_id)
                if found is not None:
                    self.state.record({"event": "created", "n": c.n, "batch_id": found["id"],
                                       "status": found.get("status"), "adopted": True})

    async def _submit(self, c: Chunk) -> bool:
        """Upload and create the batch of ``c`` if the enqueued-token budget has room; True if submitted."""
        limit = self.bcfg.max_enqueued_tokens
        if limit is not None and self._enqueued() + c.tokens > limit and self._enqueued() > 0:
            return False
        if c.file_id is None:
            f = await self._upload(c)
            self.state.record({"event": "uploaded", "n": c.n, "file_id": f["id"]})
        b = await self._create(c)
        self.state.record({"event": "created", "n": c.n, "batch_id": b["id"], "status": b.get("status")})
        log.info("batch %s created for chunk %d (%d requests)", b["id"], c.n, c.requests)
        return True

    async def _once(self, act, existing) -> dict[str, Any]:
        """Run ``act`` under the retry policy; a retry first asks ``existing`` for what a lost answer made.

        The server may have stored the file or made the batch before the connection dropped,
        so retrying blindly would store or submit it twice.
        """
        tries = 0

        async def attempt() -> dict[str, Any]:
            nonlocal tries
            tries += 1
            found = await existing() if tries > 1 else None
            return found if found is not None else await act()

        return await self._api(attempt)

    async def _upload(self, c: Chunk) -> dict[str, Any]:
        """Upload the request file of ``c`` once."""
        async def existing():
            return next((f for f in await self.api.files() if f.get("filename") == c.filename), None)
        return await self._once(lambda: self.api.upload(self.state.folder / c.filename, c.filename), existing)

    async def _create(self, c: Chunk) -> dict[str, Any]:
        """Create the batch of ``c`` once."""
        meta = {"syphus_run": self.state.run_token, "chunk": str(c.n)}

        async def existing():
            return next((b for b in await self.api.batches() if b.get("input_file_id") == c.file_id), None)
        return await self._once(lambda: self.api.create(c.file_id, self.url, self.bcfg.completion_window, meta),
                                existing)

    async def _poll(self, c: Chunk) -> None:
        b = await self._api(self.api.retrieve, c.batch_id)
        counts = b.get("request_counts") or {}
        if (b.get("status"), counts) != (c.status, c.counts) or b.get("output_file_id") != c.output_file_id:
            self.state.record({"event": "polled", "n": c.n, "status": b.get("status"), "counts": counts,
                               "output_file_id": b.get("output_file_id"), "error_file_id": b.get("error_file_id"),
                               "errors": b.get("errors")})

    # --- the loop ---------------------------------------------------------------------
    async def run(self, items: Iterable[dict[str, Any]]) -> str:
        """Drive batches until every query is settled; "complete", "interrupted", "budget" or "failed"."""
        try:
            return await self._run(items)
        except FatalError as e:
            self.fatal = e
        except UserError as e:
            self.user_error = e
        except (TransientError, ItemError) as e:  # the Batch API kept failing past the retry policy
            self.fatal = FatalError(f"the Batch API failed: {e}; run the same command again to resume (every "
                                    f"batch is recorded in {self.state.path}; nothing is sent twice)")
        return "failed"

    async def _run(self, items: Iterable[dict[str, Any]]) -> str:
        active = IdSet()
        for c in self.state.open_chunks():
            for qid in self._chunk_ids(c):
                active.add(qid)

        def fresh() -> Iterator[dict[str, Any]]:
            for item in items:
                if self.skip(item["id"]) or item["id"] in active:
                    self.stats.skipped += 1
                    continue
                yield item

        source, pending, exhausted = fresh(), [], False
        await self._reconcile()
        while True:
            # plan and submit while the enqueued-token budget has room; at most one chunk waits
            # unsubmitted, so request files on disk stay few
            while not self.stopping:
                waiting = sorted((c for c in self.state.open_chunks() if not c.submitted), key=lambda c: c.n)
                if not waiting:
                    if self.over_budget or exhausted:
                        break
                    if self._write_chunk(self._fill(source, pending), 1, None) is None:
                        exhausted = not pending and not self.over_budget and not self.stopping
                        if not pending or self.over_budget:
                            break
                    continue
                if not await self._submit(waiting[0]):
                    break
            # poll and collect
            for c in sorted(self.state.open_chunks(), key=lambda c: c.n):
                if c.submitted and not c.finished:
                    await self._poll(c)
                if c.finished and not c.collected:
                    await self._collect(c)
            open_now = self.state.open_chunks()
            if not open_now and (exhausted or self.over_budget) and not (pending and not self.over_budget):
                return "budget" if self.over_budget else "complete"
            if self.stopping:
                return "interrupted"
            await self._pause()

    async def _pause(self) -> None:
        """Wait one poll interval on the (injectable) clock, or until a stop is requested."""
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self.sleep(self.bcfg.poll_interval))]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()


async def batch_status(cfg: RunConfig, env: Mapping[str, str], refresh: bool = True) -> list[str]:
    """Every batch of the run with its progress, polled once when ``refresh`` (one try each, within the
    endpoint timeout). When the Batch API cannot be reached (or no endpoint resolves), the state recorded
    in the run folder is shown with a last line that says so."""
    loaded = load_dataset(cfg)
    folder = run_folder(cfg, loaded.dataset) / "batch"
    if not (folder / "state.jsonl").exists():
        raise UserError(f"{folder}: no batches here yet; start them with --mode batch")
    state = BatchState(folder, read_only=True)
    problem = None
    pending = [c for c in state.open_chunks() if c.submitted and not c.finished]
    if refresh and pending:
        try:
            target = batch_endpoint(cfg, env)
            async with BatchAPI(target.endpoint, timeout=target.timeout or cfg.endpoint.timeout) as api:
                for c in pending:
                    b = await api.retrieve(c.batch_id)
                    c.status, c.counts = b.get("status"), b.get("request_counts") or {}
        except SyphusError as e:
            problem = e
    rows = state.describe()
    if problem is not None:
        rows.append(f"could not refresh from the Batch API ({problem}); the rows above are the state recorded "
                    f"in {state.path}")
    return rows
