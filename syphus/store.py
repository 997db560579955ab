"""The run folder: append-only JSONL outputs keyed by query id, and meta.json.

``pairs.jsonl``   one line per answered query: id, pairs, raw text, usage, ...
``invalid.jsonl`` answered, but nothing parseable: the same fields plus ``reason``
``errors.jsonl``  failed for good: id, kind, message, status, attempts
``meta.json``     counts, tokens, durations and the config (no secrets)

Every line goes to disk in one ``os.write`` on an ``O_APPEND`` descriptor as
soon as its result arrives, so a crash at any instant leaves every completed
line intact; a torn last line (power loss) is moved to ``<file>.torn`` on the
next open. An id in pairs or invalid is never requested again.

>>> import tempfile; d = tempfile.mkdtemp()
>>> with RunStore(d) as s:
...     s.write_answer({"id": "a", "pairs": [], "usage": {}}, valid=True)
>>> RunStore(d).open().answered.__contains__("a")
True

Imports: syphus.errors, syphus.idset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from syphus.errors import UserError
from syphus.idset import IdSet

PAIRS, INVALID, ERRORS, META = "pairs.jsonl", "invalid.jsonl", "errors.jsonl", "meta.json"


def _identity(text: str) -> str:
    return text


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    whose latest record is an error,
    and ``totals`` the counts and tokens of everything in the folder.
    """

    def __init__(self, folder: str | Path, redact: Callable[[str], str] = _identity):
        self.folder = Path(folder)
        self.redact = redact
        self.answered = IdSet()
        self.failed = IdSet()
        self.recovered = IdSet()  # failed before, answered in this session
        self.totals: dict[str, int] = {}
        self.repaired: dict[str, int] = {}
        self._fds: dict[str, int] = {}
        self._stale_errors = False

    # --- opening ------------------------------------------------------------------
    def open(self) -> RunStore:
        """Repair, read and open the folder for appending."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in (PAIRS, INVALID, ERRORS):
            moved = repair_torn_tail(self.folder / name)
            if moved:
                self.repaired[name] = moved
        self.scan()
        if self._stale_errors:
            self.compact_errors()
        for name in (PAIRS, INVALID, ERRORS):
            self._fds[name] = os.open(self.folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def scan(self, read_only: bool = False) -> RunStore:
        """Learn the settled ids and totals; with ``read_only`` nothing on disk is touched."""
        t = dict(queries_with_pairs=0, pairs=0, invalid=0, errors=0, truncated=0,
                 prompt_tokens=0, completion_tokens=0)
        for name in (PAIRS, INVALID):
            for _, rec in read_jsonl(self.folder / name, skip_torn=read_only):
                self.answered.add(str(rec["id"]))
                usage = rec.get("usage") or {}
                t["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
                t["completion_tokens"] += int(usage.get("completion_tokens") or 0)
                t["truncated"] += bool(rec.get("truncated"))
                if name == PAIRS:
                    t["queries_with_pairs"] += 1
                    t["pairs"] += len(rec.get("pairs") or [])
                else:
                    t["invalid"] += 1
        seen_errors = IdSet()
        for _, rec in read_jsonl(self.folder / ERRORS, skip_torn=read_only):
            qid = str(rec["id"])
            if qid in self.answered or not seen_errors.add(qid):
                self._stale_errors = True
            else:
                self.failed.add(qid)
        t["errors"] = len(self.failed)
        self.totals = t
        return self

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
            kept.append(line)
        kept.reverse()
        tmp = path.with_name(ERRORS + ".tmp")
        with tmp.open("wb") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        fd = self._fds.pop(ERRORS, None)
        if fd is not None:
            os.close(fd)
        os.replace(tmp, path)
        if fd is not None:
            self._fds[ERRORS] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.failed = IdSet(str(json.loads(line)["id"]) for line in kept)
        self.totals["errors"] = len(self.failed)
        self._stale_errors = False

    # --- writing ------------------------------------------------------------------
    def _append(self, name: str, record: dict[str, Any]) -> None:
        data = self.redact(json.dumps(record, ensure_ascii=False)).encode("utf-8") + b"\n"
        fd = self._fds[name]
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def write_answer(self, record: dict[str, Any], valid: bool) -> None:
        """Append an answered query to pairs.jsonl (valid) or invalid.jsonl."""
        if not self._fds:
            self.open()
        qid = str(record["id"])
        self._append(PAIRS if valid else INVALID, record)
        t = self.totals
        usage = record.get("usage") or {}
        t["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        t["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        t["truncated"] += bool(record.get("truncated"))
        if valid:
            t["queries_with_pairs"] += 1
            t["pairs"] += len(record.get("pairs") or [])
        else:
            t["invalid"] += 1
        if qid in self.failed and self.recovered.add(qid):
            self._stale_errors = True
            t["errors"] -= 1

    def write_error(self, record: dict[str, Any]) -> None:
        """Append a query that failed for good to errors.jsonl."""
        if not self._fds:
            self.open()
        qid = str(record["id"])
        self._append(ERRORS, record)
        if not self.failed.add(qid):
            self._stale_errors = True
        else:
            self.totals["errors"] += 1

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Replace meta.json atomically."""
        write_atomic(self.folder / META, self.redact(json.dumps(meta, indent=2, ensure_ascii=False)) + "\n")

    def close(self) -> None:
        """Flush to disk, drop superseded error lines, close the files."""
        for fd in self._fds.values():
            os.fsync(fd)
        if self._stale_errors:
            self.compact_errors()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> RunStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def rewrite_answers(folder: str | Path, transform: Callable[[dict[str, Any]], tuple[dict[str, Any], bool]],
                    redact: Callable[[str], str] = _identity) -> dict[str, int]:
    """Re-sort every answered record through ``transform`` into new pairs/invalid files.

    Both files are written beside the old ones and swapped in with ``os.replace``;
    an id seen twice keeps its first record, so running this again after a crash
    between the two swaps leaves each id in exactly one file.
    """
    folder = Path(folder)
    for name in (PAIRS, INVALID):
        repair_torn_tail(folder / name)
    seen = IdSet()
    counts = {"valid": 0, "invalid": 0}
    tmp = {name: folder / (name + ".reparse") for name in (PAIRS, INVALID)}
    with tmp[PAIRS].open("w", encoding="utf-8") as good, tmp[INVALID].open("w", encoding="utf-8") as bad:
        for name in (PAIRS, INVALID):
            for _, rec in read_jsonl(folder / name):
                if not seen.add(str(rec["id"])):
                    continue
                new, valid = transform(rec)
                (good if valid else bad).write(redact(json.dumps(new, ensure_ascii=False)) + "\n")
                counts["valid" if valid else "invalid"] += 1
        for f in (good, bad):
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp[PAIRS], folder / PAIRS)
    os.replace(tmp[INVALID], folder / INVALID)
    return counts
