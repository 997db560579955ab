"""Collecting a finished batch: its output and error files read back and every request settled into the
run folder (answers parsed and charged, broken replies asked again, failed requests sent again in a
new batch a bounded number of times, the rest recorded as errors).

``Collecting`` is the part of ``engine/batch.BatchRunner`` that does it; it works on the runner's
store, state, budget and counters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syphus.engine.batchstate import Chunk, meta_path
from syphus.engine.client import classify, classify_batch_line, content_filtered, parse_completion
from syphus.engine.cost import has_usage
from syphus.engine.limits import estimate_tokens
from syphus.engine.record import answer_record, error_record
from syphus.engine.repair import add_usage, repair_messages, why_repair
from syphus.engine.structure import field_tokens
from syphus.errors import FatalError, ItemError, TransientError
from syphus.idset import IdSet

log = logging.getLogger("syphus")


class Collecting:
    """``BatchRunner``'s collecting steps (a mixin: ``self`` is the runner)."""

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
