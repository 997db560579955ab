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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syphus.engine.client import (classify, classify_batch_line, completion_budget,
                                  content_filtered, parse_completion, request_template)
from syphus.config import RunConfig
from syphus.engine.batchapi import BatchAPI
from syphus.engine.batchstate import BatchState, Chunk, meta_path  # noqa: F401  (BatchState: imported from here)
from syphus.engine.cost import Budget, has_usage
from syphus.durable import sync_dir, sync_file
from syphus.dataset import AbstractDataset
from syphus.errors import FatalError, ItemError, TransientError, UserError
from syphus.idset import IdSet
from syphus.engine.limits import estimate_tokens
from syphus.engine.structure import Structure, field_tokens
from syphus.engine.retry import retry_policy
from syphus.engine.record import answer_record, error_record, query_meta
from syphus.engine.repair import add_usage, repair_messages, why_repair
from syphus.engine.stats import Stats
from syphus.engine.store import RunStore

log = logging.getLogger("syphus")


# --- the runner -------------------------------------------------------------------
@dataclass
class BatchStats(Stats):
    """The online counters, plus what batches add."""

    planned: int = 0
    redriven: int = 0


class BatchRunner:
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
        self.url = "/chat/completions" if api.endpoint.kind == "azure" else "/v1/chat/completions"
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

    # --- collecting -------------------------------------------------------------------
    def _error(self, qid: str, kind: str, message: str, status: int | None = None, attempts: int = 1,
               raw: str | None = None, estimated: dict[str, int] | None = None) -> None:
        if qid in self._written:
            return
        message = self.api.redact(message)  # a result line's error may echo the key
        self.store.write_error(error_record(qid, kind, message, status, attempts, raw=raw, estimated=estimated))
        self._written.add(qid)
        self.stats.errors += 1

    def _worst(self, c: Chunk) -> dict[str, int]:
        """One request of ``c`` at its worst case, for a reply whose usage was not reported."""
        per = c.tokens / max(1, c.requests)
        completion = min(per, self.completion_budget)
        return {"prompt_tokens": round(per - completion), "completion_tokens": round(completion)}

    def _charge(self, usage: Any, estimated: dict[str, int] | None) -> float:
        """Add one reply's cost to the budget (its usage, else ``estimated``: its worst case); the cost."""
        if self.budget is None:
            return 0.0
        worst = self.budget.cost(estimated["prompt_tokens"], estimated["completion_tokens"]) if estimated else 0.0
        return self.budget.charge(usage, worst)

    def _answer(self, qid: str, body: Any, c: Chunk, meta: dict[str, Any] | None) -> str | None:
        """Settle one answered request; why it goes out again as a repair instead (None: settled)."""
        text, finish, usage, model = parse_completion(body if isinstance(body, bytes) else json.dumps(body).encode())
        estimated = None if has_usage(usage) else self._worst(c)
        withheld = content_filtered(finish, text)
        if withheld is not None:
            if qid not in self._written:
                self._charge(usage, estimated)
            self._error(qid, withheld.kind, str(withheld), withheld.status, c.round, estimated=estimated)
            return
        item = {**(meta or {}), "id": qid}
        earlier = self.store.pending.get(qid) if self.repairs else None
        again = earlier is not None and earlier.get("batch") == c.batch_id and earlier.get("raw") == text
        if again:  # this very reply, collected again after a crash: it waits for its repair, counted already
            return str(earlier.get("reason"))
        history = [*(earlier.get("repairs") or []), {"raw": earlier.get("raw"), "reason": earlier.get("reason"),
                                                     "finish_reason": earlier.get("finish_reason")}] if earlier else []
        total = add_usage(earlier.get("usage"), usage) if earlier else usage
        record, valid = answer_record(self.dataset, item, text, finish, total, model, c.round,
                                      estimated=estimated, reply_format=c.reply_format)
        why = why_repair(record, c.reply_format, finish) if self.repairs else None
        if why is not None and len(history) < self.repairs:  # asked again in the next batch, on the same conversation
            self._charge(usage, estimated)
            self.store.write_pending({"id": qid, "raw": text, "finish_reason": finish, "model": model,
                                      "usage": total, "reply_format": c.reply_format, "attempts": c.round,
                                      "reason": why, "repairs": history, "batch": c.batch_id,
                                      **({"estimated_usage": estimated} if estimated else {})})
            self.stats.repairs += 1
            return why
        if earlier is not None:
            before, _ = answer_record(self.dataset, item, earlier.get("raw"), earlier.get("finish_reason"), total,
                                      model, c.round, reply_format=c.reply_format)
            if len(record["pairs"]) < len(before["pairs"]):  # the repair came back worse: the earlier pairs stay
                history[-1] = {"raw": text, "reason": "kept the earlier reply", "finish_reason": finish}
                record, valid = {**before, "problems": before["problems"] + [f"a repair came back with fewer pairs "
                                                                             f"({earlier.get('reason')})"]}, bool(before["pairs"])
            else:
                self.stats.repaired += bool(valid and why is None)
            record["repairs"] = history
        record["batch"] = c.batch_id
        record["endpoint"] = self.endpoint_name
        if c.reply_format == "json":
            self.structure.confirm()
        try:
            self.store.write_answer(record, valid=valid)
        except ItemError as e:  # a value JSON cannot hold: the paid reply is kept in errors.jsonl
            self._charge(usage, estimated)
            self._error(qid, e.kind, str(e), 200, c.round, raw=text, estimated=estimated)
            return
        self._written.add(qid)
        self.stats.count_answer(record)
        self._charge(usage, estimated)

    async def _collect(self, c: Chunk) -> None:
        """Settle every request of a finished batch exactly once; re-drive what may succeed later."""
        seen = IdSet()
        redrive: dict[str, str] = {}  # qid -> why
        repair: dict[str, str] = {}  # qid -> what was wrong with its reply (asked again, syphus.engine.repair)
        metas = self._chunk_meta(c)
        asked = IdSet(self._chunk_ids(c))  # at most one chunk's ids
        lost, lost_cost, strays = [], 0.0, []
        for file_id, suffix in ((c.output_file_id, "output"), (c.error_file_id, "errors")):
            if not file_id:
                continue
            dest = self.state.folder / f"{Path(c.filename).stem}.{suffix}.jsonl"
            if not dest.exists():
                try:
                    await self._api(self.api.download, file_id, dest)
                except ItemError as e:  # gone (expired, deleted): what it held came back nowhere
                    lost.append(f"its {suffix} file {file_id} could not be downloaded ({e})")
                    if suffix == "output":  # its requests were billed: counted at their worst case
                        for _ in range(int((c.counts or {}).get("completed") or 0)):
                            lost_cost += self._charge(None, self._worst(c))
                    continue
            with dest.open("rb") as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                        qid = str(row["custom_id"])
                    except (ValueError, KeyError, TypeError):
                        log.warning("%s: a line that is not a batch result was skipped", dest)
                        continue
                    if qid not in asked:  # never in this batch: no query of the run is settled by it
                        strays.append(qid)
                        continue
                    seen.add(qid)
                    if qid in self._written or qid in self.store.answered:
                        continue  # settled already (by this session, or before a crash mid-collect)
                    # an id in store.failed is settled all the same: it was sent again (--retry_errors) and
                    # paid for; an answer drops its error at close, a repeated error is compacted away
                    self._settle_row(qid, row, c, redrive, metas.get(qid), repair)
        if strays:
            log.warning("batch %s answered %d custom_id(s) it never held (%s): ignored", c.batch_id, len(strays),
                        ", ".join(repr(x) for x in strays[:5]) + (", ..." if len(strays) > 5 else ""))
        # requests that came back nowhere (failed or cancelled batches, a file gone) are re-driven too
        found = (c.errors or {}).get("data") if isinstance(c.errors, dict) else None
        reason = f"batch {c.batch_id} {c.status}" + (
            ": " + "; ".join(f"{e.get('code')}: {e.get('message')}" for e in found) if found else "")
        if lost:
            reason += ", but " + "; ".join(lost)
            log.warning("%s; its unanswered requests go into a new batch (those it billed are counted at their "
                        "worst case)", reason)
        for qid in self._chunk_ids(c):
            if qid not in seen and qid not in self._written and qid not in self.store.answered:
                redrive.setdefault(qid, reason)
        if repair and not any(x.parent == c.n for x in self.state.chunks.values()):
            if redrive and c.round >= self.bcfg.max_rounds:  # the redriven ones end here; the repairs go on
                for qid, why in redrive.items():
                    self._error(qid, "batch_failed", f"{why} (after {c.round} batch rounds)", attempts=c.round)
                redrive = {}
            new = self._write_chunk(self._repair_lines(c, repair, redrive), c.round + 1, c.n)
            if new is not None:
                log.info("chunk %d: %d broken replies asked again, %d requests sent again, in a new batch (round %d)",
                         c.n, len(repair), len(redrive), new.round)
            redrive = {}  # written with the repairs (or left for a rerun where the cap stopped them)
        if redrive and not any(x.parent == c.n for x in self.state.chunks.values()):
            if c.round >= self.bcfg.max_rounds:
                for qid, why in redrive.items():
                    self._error(qid, "batch_failed", f"{why} (after {c.round} batch rounds)", attempts=c.round)
            else:
                new = self._write_chunk(self._redrive_lines(c, redrive), c.round + 1, c.n)
                if new is not None:
                    self.stats.redriven += new.requests
                    log.info("chunk %d: %d requests go into a new batch (round %d)", c.n, new.requests, new.round)
        if self.budget is not None:
            self.budget.settle(c.reserved, None)
        self.state.record({"event": "collected", "n": c.n, "redriven": len(redrive),
                           **({"lost_cost": lost_cost} if lost_cost else {})})

    def _settle_row(self, qid: str, row: dict[str, Any], c: Chunk, redrive: dict[str, str],
                    meta: dict[str, Any] | None, repair: dict[str, str] | None = None) -> None:
        resp = row.get("response") or None
        err = row.get("error") or None
        if resp and resp.get("status_code") == 200:
            body = resp.get("body")
            try:
                why = self._answer(qid, body.encode() if isinstance(body, str) else body, c, meta)
                if why is not None and repair is not None:
                    repair[qid] = why
            except TransientError as e:
                redrive[qid] = str(e)
            except ItemError as e:
                self._error(qid, e.kind, str(e), 200, c.round)
            return
        if resp:
            body = resp.get("body")
            problem = classify(int(resp.get("status_code") or 500), {},
                               json.dumps(body).encode() if not isinstance(body, str) else body.encode())
        else:
            problem = classify_batch_line((err or {}).get("code"), (err or {}).get("message"))
        if isinstance(problem, TransientError):
            redrive[qid] = str(problem)
        elif isinstance(problem, FatalError):
            self._error(qid, "refused", str(problem), getattr(problem, "status", None), c.round)
        else:
            self._error(qid, problem.kind, str(problem), getattr(problem, "status", None), c.round)

    def _repair_lines(self, c: Chunk, repair: dict[str, str],
                      redrive: dict[str, str]) -> Iterator[tuple[str, str, int, float]]:
        """The lines of ``c`` to send again: each broken reply's conversation with a request to repair it, and
        the requests to redrive as they were; stops where --max-cost would be passed (the rest wait for a rerun)."""
        metas = self._chunk_meta(c)
        for qid, line, prompt in self._chunk_lines(c):
            if qid not in repair and qid not in redrive:
                continue
            if qid in metas:
                self._extras[qid] = metas[qid]
            if qid in repair:
                req = json.loads(line)
                broken = self.store.pending.get(qid) or {}
                req["body"]["messages"] = repair_messages(req["body"]["messages"], broken.get("raw"), repair[qid],
                                                          c.reply_format)
                line = json.dumps(req, ensure_ascii=False, allow_nan=False) + "\n"
                prompt += estimate_tokens(req["body"]["messages"][-2:])  # the broken reply and what was wrong
            hold = self._hold(prompt)
            if hold is None:
                return
            yield qid, line, prompt + self.completion_budget, hold

    def _redrive_lines(self, c: Chunk, redrive: dict[str, str]) -> Iterator[tuple[str, str, int, float]]:
        """The request lines of ``c`` to send again; stops where --max-cost would be passed."""
        metas = self._chunk_meta(c)
        for qid, line, prompt in self._chunk_lines(c):
            if qid in redrive and qid in metas:
                self._extras[qid] = metas[qid]
            if qid in redrive:
                hold = self._hold(prompt)
                if hold is None:
                    return  # the rest stay unsettled, for a rerun with a higher cap
                yield qid, line, prompt + self.completion_budget, hold

    def _chunk_meta(self, c: Chunk) -> dict[str, dict[str, Any]]:
        """The sidecar meta of a chunk (at most one chunk's worth of entries)."""
        path = meta_path(self.state.folder / c.filename)
        if not path.exists():
            return {}
        with path.open(encoding="utf-8") as f:
            return {row["id"]: row["meta"] for row in map(json.loads, f) if row}

    def _chunk_lines(self, c: Chunk) -> Iterator[tuple[str, str, int]]:
        """(query id, request line, estimated prompt tokens) of a chunk file."""
        with (self.state.folder / c.filename).open(encoding="utf-8") as f:
            for line in f:
                req = json.loads(line)
                body = req["body"]
                schema = {k: body[k] for k in ("response_format", "structured_outputs") if k in body}
                yield req["custom_id"], line, estimate_tokens(body["messages"]) + field_tokens(schema)

    def _chunk_ids(self, c: Chunk) -> Iterator[str]:
        for qid, _, _ in self._chunk_lines(c):
            yield qid

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
