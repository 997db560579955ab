"""The run folder: append-only JSONL outputs keyed by query id, and meta.json.

``pairs.jsonl``   one line per answered query: id, pairs, raw text, usage, ...
``invalid.jsonl`` answered, but nothing parseable: the same fields plus ``reason``
``errors.jsonl``  failed for good: id, kind, message, status, attempts
``meta.json``     counts, tokens, durations and the config (no secrets)

Every line goes to disk in one ``os.write`` on an ``O_APPEND`` descriptor as
soon as its result arrives, so a crash at any instant leaves every completed
line intact; a torn last line (power loss) is moved to ``<file>.torn`` on the
next open. An id in pairs or invalid is never requested again, nor is an id
whose error is settled (per item: a bad request, a content filter); an error
of the endpoint (connections, 5xx, 404) is sent again by a plain rerun.

One writer per folder: ``open()`` takes an OS lock (``flock`` on ``syphus.lock``)
for as long as the store is open; a second process is refused at once with a
message naming the first. The kernel drops the lock when a process dies, even
by SIGKILL. ``rewrite`` (``--reparse``) swaps files under a commit marker, and
``open()`` finishes or undoes a swap a crash interrupted, so no id is ever in
two files.

>>> import tempfile; d = tempfile.mkdtemp()
>>> with RunStore(d) as s:
...     s.write_answer({"id": "a", "pairs": [], "usage": {}}, valid=True)
>>> RunStore(d).open().answered.__contains__("a")
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from syphus.durable import atomic_file, commit_swaps, recover_swaps, sync_file, write_all, write_atomic
from syphus.errors import ItemError, StoreError, UserError, is_settled_kind
from syphus.idset import IdSet
from syphus.engine.folderlock import FolderLock
from syphus.engine.record import Tally, encode, encode_loose, now_iso, tally

PAIRS, INVALID, ERRORS, META = "pairs.jsonl", "invalid.jsonl", "errors.jsonl", "meta.json"
INFLIGHT, LOST = "inflight.jsonl", "lost.jsonl"  # requests reserved before they went out; those never settled
REPAIRS = "repairs.jsonl"  # broken replies being repaired (syphus.engine.repair), so a crash pays for none twice
COMMIT, SWAP = "reparse.commit", ".reparse"


def recover_swap(folder: Path) -> str | None:
    """Finish (commit marker present) or undo (absent) a ``rewrite`` a crash interrupted."""
    leftovers = [folder / (name + SWAP) for name in (PAIRS, INVALID) if (folder / (name + SWAP)).exists()]
    return recover_swaps(folder, COMMIT, leftovers, SWAP)


def read_jsonl(path: Path, skip_torn: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, record)``; a line that is not JSON is a UserError naming it.

    ``skip_torn`` passes over an unterminated last line instead (for read-only looks).
    """
    if not path.exists():
        return
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or (skip_torn and not line.endswith(b"\n")):
                continue
            try:
                record = json.loads(line)
            except ValueError as e:  # bad JSON or bad UTF-8
                raise UserError(f"{path}:{n}: not a JSON line ({getattr(e, 'msg', e)}); move that line out of "
                                "the file to resume (everything else is kept)") from e
            if not isinstance(record, dict) or "id" not in record:
                raise UserError(f"{path}:{n}: a record without 'id'; move that line out of the file to resume")
            yield n, record


def repair_torn_tail(path: Path) -> int:
    """Move an unterminated last line to ``<file>.torn``; return the bytes moved."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        pos, chunk = size, 1 << 16
        cut = 0
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            block = f.read(pos - start)
            i = block.rfind(b"\n")
            if i >= 0:
                cut = start + i + 1
                break
            pos = start
        f.seek(cut)
        tail = f.read()
        with path.with_name(path.name + ".torn").open("ab") as torn:
            torn.write(tail + b"\n")
        f.truncate(cut)
        return len(tail)


class RunStore:
    """Appends results to a run folder and knows which ids are already settled.

    After ``open()``: ``answered`` holds the ids already in pairs.jsonl or
    invalid.jsonl (never requested again; ids answered later in this session
    are not added, so memory does not grow with the run), ``failed`` ids
    whose latest record is an error, ``settled_errors`` those of them whose
    error is final (per item, not the endpoint's), and ``totals`` the counts
    and tokens of everything in the folder.

    ``write`` is injectable (``os.write`` by default) so tests can make the disk fail.
    """

    def __init__(self, folder: str | Path, write: Callable[[int, memoryview], int] = os.write):
        self.folder = Path(folder)
        self.answered = IdSet()
        self.failed = IdSet()
        self.settled_errors = IdSet()
        self.recovered = IdSet()  # failed before, answered in this session
        self.totals: dict[str, int] = {}
        self.repaired: dict[str, int] = {}
        self.pending: dict[str, dict[str, Any]] = {}  # broken replies whose repair never ended, by query id
        self._pending_counted: set[str] = set()  # those of them counted in ``totals`` when the folder was read
        self._reserved: dict[str, int] = {}  # query id -> requests reserved this session and not yet in a record
        self.lost = 0  # requests an earlier session sent and never settled, charged at their worst case on open
        self.swap: str | None = None
        self._fds: dict[str, int] = {}
        self._stale_errors = False
        self._write = write
        self._lock = FolderLock(self.folder)

    def settled(self, qid: str) -> bool:
        """Whether ``qid`` needs no request: answered, or failed for a reason of its own."""
        return qid in self.answered or qid in self.settled_errors

    # --- opening ------------------------------------------------------------------
    def open(self) -> RunStore:
        """Lock, repair, read and open the folder for appending."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            return self._open_locked()
        except BaseException:
            self._close_fds()
            self._lock.release()
            raise

    def _open_locked(self) -> RunStore:
        self.swap = recover_swap(self.folder)
        for name in (PAIRS, INVALID, ERRORS, REPAIRS):
            moved = repair_torn_tail(self.folder / name)
            if moved:
                self.repaired[name] = moved
        self.scan()
        if self._stale_errors:
            self.compact_errors()
        for name in (PAIRS, INVALID, ERRORS, LOST):
            self._fds[name] = os.open(self.folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._settle_inflight()
        self._fds[INFLIGHT] = os.open(self.folder / INFLIGHT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    # --- the write-ahead reservations --------------------------------------------------
    def _settle_inflight(self) -> None:
        """Charge every request an earlier session put on the wire and never settled (Ctrl-C past the drain, a
        fatal error, SIGKILL) at its worst case, in lost.jsonl, then start the reservation log afresh."""
        path = self.folder / INFLIGHT
        open_: dict[str, list[tuple[int, int]]] = {}
        for _, rec in read_jsonl(path, skip_torn=True):
            qid = str(rec["id"])
            if rec.get("done"):
                open_.pop(qid, None)
            else:
                open_.setdefault(qid, []).append((int(rec.get("prompt") or 0), int(rec.get("completion") or 0)))
        if open_:
            for qid, reserved in open_.items():
                prompt, completion = sum(p for p, _ in reserved), sum(c for _, c in reserved)
                rec = {"id": qid, "requests": len(reserved), "at": now_iso(),
                       "estimated_usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
                self._append(LOST, encode(rec))
                self._count_estimate(rec)
                self.lost += len(reserved)
            os.fsync(self._fds[LOST])  # charged for good before the log that proves it is dropped
        if path.exists():
            os.truncate(path, 0)

    def reserve(self, qid: str, prompt: int, completion: int) -> None:
        """Note a request before its bytes leave: if no record of ``qid`` follows, the next session charges it."""
        self._append(INFLIGHT, encode({"id": qid, "prompt": prompt, "completion": completion}))
        self._reserved[qid] = self._reserved.get(qid, 0) + 1

    def _release(self, qid: str) -> None:
        """``qid``'s record (or repair note) holds the cost of its requests so far: its reservations are closed."""
        if self._reserved.pop(qid, 0) and INFLIGHT in self._fds:
            self._append(INFLIGHT, encode({"id": qid, "done": True}))

    def _scan_pending(self, read_only: bool) -> None:
        """The broken replies whose repair never ended (no record since): counted as spent, resumed by the runner."""
        self.pending = {}
        for _, rec in read_jsonl(self.folder / REPAIRS, skip_torn=read_only):
            qid = str(rec["id"])
            if qid not in self.answered:
                self.pending[qid] = rec  # the latest: its usage is that of every request so far
        self._pending_counted = set(self.pending)
        for rec in self.pending.values():
            r = tally(rec)
            self.totals["prompt_tokens"] += r.prompt_tokens
            self.totals["completion_tokens"] += r.completion_tokens
            self._count_estimate(rec, r)

    def write_pending(self, entry: dict[str, Any]) -> None:
        """Note a broken reply (its raw text, usage, attempts so far) before its repair is sent."""
        if not self._fds:
            self.open()
        if REPAIRS not in self._fds:
            self._fds[REPAIRS] = os.open(self.folder / REPAIRS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._append(REPAIRS, encode(entry))
        self.pending[str(entry["id"])] = entry
        self._release(str(entry["id"]))

    def scan(self, read_only: bool = False) -> RunStore:
        """Learn the settled ids and totals; with ``read_only`` nothing on disk is touched."""
        self.answered, self.failed, self.settled_errors = IdSet(), IdSet(), IdSet()
        self.totals = t = dict(queries_with_pairs=0, pairs=0, invalid=0, errors=0, errors_to_resend=0, truncated=0,
                               prompt_tokens=0, completion_tokens=0, estimated_prompt_tokens=0,
                               estimated_completion_tokens=0)
        for name in (PAIRS, INVALID):
            for _, rec in read_jsonl(self.folder / name, skip_torn=read_only):
                self.answered.add(str(rec["id"]))
                self._count(rec, PAIRS if name == PAIRS else INVALID)
        seen_errors = IdSet()
        for _, rec in read_jsonl(self.folder / ERRORS, skip_torn=read_only):
            qid = str(rec["id"])
            self._count_estimate(rec)  # every attempt that may have been billed counts, superseded or not
            if qid in self.answered or not seen_errors.add(qid):
                self._stale_errors = True
            else:
                self._count_error(qid, rec)
        self._scan_pending(read_only)
        for _, rec in read_jsonl(self.folder / LOST, skip_torn=read_only):
            self._count_estimate(rec)  # requests sent and never settled: charged at their worst case, for good
        return self

    def _count(self, rec: dict[str, Any], name: str) -> None:
        t, r = self.totals, tally(rec)
        t["prompt_tokens"] += r.prompt_tokens
        t["completion_tokens"] += r.completion_tokens
        t["truncated"] += r.truncated
        self._count_estimate(rec, r)
        if name == PAIRS:
            t["queries_with_pairs"] += 1
            t["pairs"] += r.pairs
        else:
            t["invalid"] += 1

    def _count_estimate(self, rec: dict[str, Any], r: Tally | None = None) -> None:
        r = r or tally(rec)
        self.totals["estimated_prompt_tokens"] += r.estimated_prompt_tokens
        self.totals["estimated_completion_tokens"] += r.estimated_completion_tokens

    def _count_error(self, qid: str, rec: dict[str, Any]) -> None:
        self.failed.add(qid)
        self.totals["errors"] += 1
        if is_settled_kind(rec.get("kind")):
            self.settled_errors.add(qid)
        else:
            self.totals["errors_to_resend"] += 1

    def compact_errors(self) -> None:
        """Rewrite errors.jsonl keeping, per id, only its latest error and only if still unanswered."""
        path = self.folder / ERRORS
        if not path.exists():
            return
        lines = path.read_bytes().splitlines(keepends=True)
        kept, seen = [], IdSet()
        for line in reversed(lines):
            if not line.strip():
                continue
            qid = str(json.loads(line)["id"])
            if qid in self.answered or qid in self.recovered or not seen.add(qid):
                continue
            kept.append(line if line.endswith(b"\n") else line + b"\n")
        kept.reverse()
        with atomic_file(path, "wb") as f:
            f.writelines(kept)
        fd = self._fds.pop(ERRORS, None)
        if fd is not None:  # it points at the file just replaced
            os.close(fd)
            self._fds[ERRORS] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.failed, self.settled_errors = IdSet(), IdSet()
        self.totals["errors"] = self.totals["errors_to_resend"] = 0
        for line in kept:
            rec = json.loads(line)
            self._count_error(str(rec["id"]), rec)
        self._stale_errors = False

    # --- writing ------------------------------------------------------------------
    def _append(self, name: str, data: bytes) -> None:
        """Write one whole line; a failure is a StoreError that stops the run (resumable)."""
        try:
            write_all(self._fds[name], data, self._write)
        except OSError as e:
            raise StoreError(f"{self.folder / name}: cannot write ({e}); free disk space or fix the folder's "
                             "permissions, then run the same command again to resume (a torn line is set aside; "
                             "the query being written is sent again)") from e

    def write_answer(self, record: dict[str, Any], valid: bool) -> None:
        """Append an answered query to pairs.jsonl (valid) or invalid.jsonl.

        Raises ItemError (kind ``unencodable``) before writing anything if the record is not JSON.
        """
        if not self._fds:
            self.open()
        qid = str(record["id"])
        name = PAIRS if valid else INVALID
        self._append(name, encode(record))
        self._release(qid)
        earlier = self.pending.pop(qid, None)
        if earlier is not None and qid in self._pending_counted:  # counted at open; the record's usage holds it now
            self._pending_counted.discard(qid)
            r = tally(earlier)
            self.totals["prompt_tokens"] -= r.prompt_tokens
            self.totals["completion_tokens"] -= r.completion_tokens
            self.totals["estimated_prompt_tokens"] -= r.estimated_prompt_tokens
            self.totals["estimated_completion_tokens"] -= r.estimated_completion_tokens
        self._count(record, name)
        if qid in self.failed and self.recovered.add(qid):
            self._stale_errors = True
            self.totals["errors"] -= 1
            if qid not in self.settled_errors:
                self.totals["errors_to_resend"] -= 1

    def write_error(self, record: dict[str, Any]) -> None:
        """Append a query that failed for good to errors.jsonl (always encodable: raw text is kept)."""
        if not self._fds:
            self.open()
        qid = str(record["id"])
        try:
            data = encode(record)
        except ItemError:
            data = encode_loose(record)
        self._append(ERRORS, data)
        self._release(qid)
        self._count_estimate(record)
        if qid in self.failed:
            self._stale_errors = True  # counted once; the older line goes at close
        else:
            self._count_error(qid, record)

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Replace meta.json atomically."""
        text = json.dumps(meta, indent=2, ensure_ascii=True, allow_nan=False, default=repr)
        try:
            write_atomic(self.folder / META, text + "\n")
        except OSError as e:
            raise StoreError(f"{self.folder / META}: cannot write ({e}); free disk space or fix the folder's "
                             "permissions, then run again to resume") from e

    def close(self) -> None:
        """Flush to disk, drop superseded error lines, close the files, release the lock."""
        try:
            for fd in self._fds.values():
                os.fsync(fd)
            if self._stale_errors:
                self.compact_errors()
        finally:
            self._close_fds()
            self._lock.release()

    def _close_fds(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def rewrite(self, transform: Callable[[dict[str, Any]], tuple[dict[str, Any], bool]]) -> dict[str, int]:
        """Re-sort every answered record through ``transform`` (``--reparse``), under this store's lock."""
        if not self._fds:
            self.open()
        for name in (PAIRS, INVALID):
            os.close(self._fds.pop(name))
        counts = rewrite_answers(self.folder, transform)
        self.scan()
        for name in (PAIRS, INVALID):
            self._fds[name] = os.open(self.folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return counts

    def __enter__(self) -> RunStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def rewrite_answers(folder: str | Path,
                    transform: Callable[[dict[str, Any]], tuple[dict[str, Any], bool]]) -> dict[str, int]:
    """Re-sort every answered record through ``transform`` into new pairs/invalid files.

    The caller holds the folder's lock (``RunStore.rewrite``). Both files are written
    beside the old ones and fsynced, then a commit marker is written, then both are
    swapped in and the marker removed: a crash before the marker leaves the old files
    (``recover_swap`` drops the new ones), a crash after it is finished by the next open.
    An id seen twice keeps its first record.
    """
    folder = Path(folder)
    recover_swap(folder)
    for name in (PAIRS, INVALID):
        repair_torn_tail(folder / name)
    seen = IdSet()
    counts = {"valid": 0, "invalid": 0}
    tmp = {name: folder / (name + SWAP) for name in (PAIRS, INVALID)}
    with tmp[PAIRS].open("wb") as good, tmp[INVALID].open("wb") as bad:
        for name in (PAIRS, INVALID):
            for _, rec in read_jsonl(folder / name):
                if not seen.add(str(rec["id"])):
                    continue
                new, valid = transform(rec)
                try:
                    data = encode(new)
                except ItemError:
                    data, valid = encode_loose(new), False
                (good if valid else bad).write(data)
                counts["valid" if valid else "invalid"] += 1
        for f in (good, bad):
            sync_file(f)
    commit_swaps(folder, COMMIT, [folder / PAIRS, folder / INVALID], SWAP,
                 "swap pairs.jsonl.reparse and invalid.jsonl.reparse into place\n")
    return counts
