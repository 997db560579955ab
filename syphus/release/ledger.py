"""Ledger: instruction ids given once per pair and kept forever (``<run>/instruction_ids.jsonl``).

An instruction id means one pair: export asks the ledger for each pair's id by (release code,
query id, pair index) instead of numbering pairs by position, so a re-export after
``--retry_errors``, a resumed run or ``--dedup`` gives every pair it gave before the same id, and new
pairs new ids after the highest. ``translate`` (which remembers its work by those ids) never
attaches a translation to another pair.

The file is append-only JSONL, one line per query and code, each naming the numbers of a run of
its pairs: ``{"code": "DC", "query": "q1", "first": 0, "numbers": [1, 2, 3], "width": 5}`` gives
pairs 0, 1, 2 of query ``q1`` the ids ``DC_INS_00001``..``DC_INS_00003`` (``instruction_id(code, n,
width)``; the width is fixed when a code's first id is given, so no id's text ever changes). Lines
are fsynced before the release files that use their ids are complete; a torn last line (a crash
in mid-write) is cut off at the next open. Two exports at once take turns: the ledger is held under
an exclusive ``flock`` on ``instruction_ids.lock`` while ids are read and given.

``--reparse`` may change the text of a query's pairs: an id stays with its slot (query, index)
whatever text the slot holds now, so readers that keep work by id (``translate``) also check the
text (a translation is keyed by id and English text, and redone when the text changed).

>>> import tempfile; folder = Path(tempfile.mkdtemp())
>>> with Ledger.open(folder, "EX") as ledger:
...     ledger.ids("q2", 2, 5), ledger.ids("q1", 1, 5)
(['EX_INS_00001', 'EX_INS_00002'], ['EX_INS_00003'])
>>> with Ledger.open(folder, "EX") as ledger:
...     ledger.ids("q1", 2, 5), ledger.ids("q2", 2, 5)
(['EX_INS_00003', 'EX_INS_00004'], ['EX_INS_00001', 'EX_INS_00002'])
"""

from __future__ import annotations

import fcntl
import json
import os
from array import array
from pathlib import Path

from syphus.durable import sync_file
from syphus.errors import UserError
from syphus.engine.scenes import instruction_id

FILE = "instruction_ids.jsonl"
LOCK = "instruction_ids.lock"
SYNC_EVERY = 10_000  # ledger lines between fsyncs (and one at the end, before the release files are complete)


class Ledger:
    """The instruction ids of one release code in one run folder; open it with ``Ledger.open``."""

    def __init__(self, path: Path, code: str, lock_fd: int):
        self.path, self.code, self._lock_fd = path, code, lock_fd
        self._numbers: dict[str, array] = {}  # query id -> number of each pair index (0: none yet)
        self.width: int | None = None
        self.highest = 0
        self.given = 0  # ids given by this open
        self._out = None
        self._unsynced = 0

    @classmethod
    def open(cls, folder: str | Path, code: str) -> "Ledger":
        """Lock the ledger of ``folder`` (waiting for another export to finish) and read it."""
        folder = Path(folder)
        try:
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"{folder / LOCK}: cannot open the instruction id ledger's lock ({e.strerror or e}); "
                            "export needs to write to the run folder") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        ledger = cls(folder / FILE, code, fd)
        try:
            ledger._read()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            data = f.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a line torn by a crash: its ids were never used
            with self.path.open("r+b") as f:
                f.truncate(end)
                sync_file(f)
        for n, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                code, query, first, numbers = rec["code"], str(rec["query"]), int(rec["first"]), rec["numbers"]
                width = int(rec["width"])
            except (ValueError, KeyError, TypeError) as e:
                raise UserError(f"{self.path}:{n}: not a ledger line ({e}); the ledger keeps the ids export gave: "
                                "restore it from a backup rather than edit it") from None
            if code != self.code:
                continue
            self.width = width
            slots = self._numbers.setdefault(query, array("Q"))
            if len(slots) < first + len(numbers):
                slots.extend([0] * (first + len(numbers) - len(slots)))
            for i, number in enumerate(numbers):
                slots[first + i] = int(number)
                self.highest = max(self.highest, int(number))

    def ids(self, query: str, pairs: int, width: int) -> list[str]:
        """The ids of pairs 0..``pairs``-1 of ``query``: those given before, and new ones (written first).

        ``width`` is the id's digits when this code has no id yet (later ones keep the first width).
        """
        if self.width is None:
            self.width = width
        slots = self._numbers.setdefault(query, array("Q"))
        if len(slots) < pairs:
            slots.extend([0] * (pairs - len(slots)))
        new = [i for i in range(pairs) if not slots[i]]
        if new:
            for i in new:
                self.highest += 1
                slots[i] = self.highest
            first = new[0]
            numbers = [slots[i] for i in range(first, pairs)]
            self._write({"code": self.code, "query": query, "first": first, "numbers": numbers, "width": self.width})
            self.given += len(new)
        return [instruction_id(self.code, slots[i], self.width) for i in range(pairs)]

    def _write(self, rec: dict) -> None:
        if self._out is None:
            self._out = self.path.open("ab")
        self._out.write(json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n")
        self._unsynced += 1
        if self._unsynced >= SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        """Put every id given so far on disk (export calls it before its release files are complete)."""
        if self._out is not None and self._unsynced:
            sync_file(self._out)
        self._unsynced = 0

    def close(self) -> None:
        """Sync, then release the lock."""
        if self._out is not None:
            self.sync()
            self._out.close()
            self._out = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
