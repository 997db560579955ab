"""The state of a batch run: its chunks (request files and the batches made of them), rebuilt from
and recorded to ``batch/state.jsonl``.

Every step is an event appended whole and fsynced before the next step is taken, so a process
killed anywhere resumes from what it had done; an event torn by a crash mid-write is moved to
``state.jsonl.torn`` on the next open.

>>> state = BatchState(folder / "batch")               # doctest: +SKIP
>>> [c.n for c in state.open_chunks()]                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syphus.durable import sync_dir, write_all
from syphus.engine.record import now_iso
from syphus.engine.store import repair_torn_tail
from syphus.errors import UserError

log = logging.getLogger("syphus")

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
FINISHED = ("completed", "expired", "failed", "cancelled")
STATE = "state.jsonl"


def meta_path(chunk_path: Path) -> Path:
    """The sidecar beside a request file: what the plugin attached to each query (its ``meta``)."""
    return chunk_path.with_name(chunk_path.stem + ".meta.jsonl")


@dataclass
class Chunk:
    """One request file and the batch made of it."""

    n: int
    round: int
    filename: str
    requests: int
    tokens: int
    reserved: float = 0.0
    parent: int | None = None
    file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: Any = None
    collected: bool = False
    lost_cost: float = 0.0  # the worst case of requests billed whose output file was gone (404)
    reply_format: str = "text"  # what its request lines asked for: "json" (a schema) or "text"

    @property
    def submitted(self) -> bool:
        return self.batch_id is not None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class BatchState:
    """The chunks of a run, rebuilt from (and recorded to) ``batch/state.jsonl``.

    On open, a torn last event (the process died while writing it, so the step it
    described was never taken) is moved to ``state.jsonl.torn``; ``read_only``
    (for a look at a run that may be live) passes over it instead and records nothing.
    """

    def __init__(self, folder: Path, read_only: bool = False):
        self.folder = folder
        self.path = folder / STATE
        self.chunks: dict[int, Chunk] = {}
        self.run_token = ""
        self.repaired = 0
        if not read_only:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.repaired = repair_torn_tail(self.path)
            if self.repaired:
                log.warning("%s: moved a torn last event (%d bytes) to %s.torn", self.path, self.repaired, STATE)
        for n, ev in self._events(skip_torn=read_only):
            try:
                self._apply(ev)
            except (KeyError, TypeError) as e:
                raise self._unreadable(n, f"an event that does not fit the ones before it ({e!r})") from e
        if not self.run_token and not read_only:
            self.run_token = os.urandom(4).hex()
            self.record({"event": "run", "token": self.run_token})
            sync_dir(self.folder)

    def _events(self, skip_torn: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line number, event)`` of every whole event on disk."""
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or (skip_torn and not line.endswith(b"\n")):
                    continue
                try:
                    ev = json.loads(line)
                except ValueError as e:
                    raise self._unreadable(n, f"not a JSON line ({getattr(e, 'msg', e)})") from e
                if not isinstance(ev, dict):
                    raise self._unreadable(n, "not a JSON object")
                yield n, ev

    def _unreadable(self, n: int, why: str) -> UserError:
        return UserError(f"{self.path}:{n}: unreadable batch state: {why}; it is append-only, so restore it "
                         f"from a backup, or move {self.folder} away to start the batches over (answers already "
                         "in pairs.jsonl / invalid.jsonl are kept and not requested again)")

    def _apply(self, ev: dict[str, Any]) -> None:
        kind = ev["event"]
        if kind == "run":
            self.run_token = ev["token"]
        elif kind == "chunk":
            self.chunks[ev["n"]] = Chunk(ev["n"], ev["round"], ev["filename"], ev["requests"], ev["tokens"],
                                         ev.get("reserved", 0.0), ev.get("parent"),
                                         reply_format=ev.get("reply_format", "text"))
        else:
            c = self.chunks[ev["n"]]
            if kind == "uploaded":
                c.file_id = ev["file_id"]
            elif kind == "created":
                c.batch_id = ev["batch_id"]
                c.status = ev.get("status", "validating")
            elif kind == "polled":
                c.status, c.counts = ev["status"], ev.get("counts") or {}
                c.output_file_id, c.error_file_id = ev.get("output_file_id"), ev.get("error_file_id")
                c.errors = ev.get("errors")
            elif kind == "collected":
                c.collected = True
                c.lost_cost = ev.get("lost_cost", 0.0)

    def record(self, ev: dict[str, Any]) -> None:
        """Append one event whole and fsync it (so it is on disk before the next step is taken), then apply it.

        A crash part-way leaves an unterminated last line, which the next open moves aside.
        """
        ev = {**ev, "at": now_iso()}
        data = (json.dumps(ev) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if ev["event"] != "run":
            self._apply(ev)

    def next_n(self) -> int:
        return max(self.chunks, default=0) + 1

    def open_chunks(self) -> list[Chunk]:
        return [c for c in self.chunks.values() if not c.collected]

    def describe(self) -> list[str]:
        rows = []
        for c in sorted(self.chunks.values(), key=lambda c: c.n):
            counts = c.counts or {}
            state = "collected" if c.collected else c.status or ("uploaded" if c.file_id else "written")
            rows.append(f"chunk {c.n:04d} round {c.round} {state:<11} batch {c.batch_id or '-':<24} "
                        f"{counts.get('completed', 0)}/{c.requests} done, {counts.get('failed', 0)} failed, "
                        f"~{c.tokens} tokens")
        return rows
