"""Repeated ids of a stream of query inputs, found exactly without keeping every id in memory.

Each id goes, with its item number, into one of 256 buckets by hash, written to a temporary file
in blocks; at the end each bucket's ids are compared as strings (a ``set`` a bucket, built in C).
Only the repeated ids stay in memory (``IdCounts``). The check before a run (``syphus.inputs``)
feeds it; ``Offence`` is one offending item as that check reports it.

>>> finder = DuplicateFinder()
>>> for n, qid in enumerate(["a", "b", "a"], 1):
...     finder.add(qid, n)
>>> r = finder.finish(); finder.close()
>>> r.extra, [o.text for o in r.examples]
(1, ["item 3 repeats id 'a' (first at item 1)"])
"""

from __future__ import annotations

import heapq
import json
import tempfile
from array import array
from dataclasses import dataclass, field
from typing import IO

from syphus.idset import IdCounts

EXAMPLES = 5  # offending items shown in the report


@dataclass(order=True)
class Offence:
    """One offending item: its number (from 1), its kind (a key of KINDS) and the sentence that says it."""

    item: int
    kind: str = field(compare=False)
    text: str = field(compare=False)


@dataclass
class _Block:
    offset: int
    positions: int  # bytes of item numbers (array 'q')
    ids: int  # bytes of ids
    as_json: bool  # ids written as a JSON list (one of them holds a line break), else joined by "\n"
    has_hash: bool  # one of the ids holds '#' (what --on_duplicate suffix must not collide with)


class DuplicateFinder:
    """Every ``(id, item number)`` of a stream, spread over hash buckets on disk; ``finish`` finds the repeats.

    ``ids[b]`` and ``positions[b]`` are the open block of bucket ``b`` (the check appends to them
    directly, it is the hot loop); ``flush(b)`` writes it once it holds ``block`` ids.
    """

    buckets = 256
    mask = buckets - 1
    block = 512

    def __init__(self) -> None:
        self.ids: list[list[str]] = [[] for _ in range(self.buckets)]
        self.positions: list[array] = [array("q") for _ in range(self.buckets)]
        self._blocks: list[list[_Block]] = [[] for _ in range(self.buckets)]
        self._file: IO[bytes] = tempfile.TemporaryFile()
        self.disk_bytes = 0

    def add(self, qid: str, n: int) -> None:
        """Note that item ``n`` has id ``qid`` (what the hot loop does inline)."""
        b = hash(qid) & self.mask
        ids = self.ids[b]
        ids.append(qid)
        self.positions[b].append(n)
        if len(ids) >= self.block:
            self.flush(b)

    def flush(self, b: int) -> None:
        """Write bucket ``b``'s open block to the temporary file."""
        ids, positions = self.ids[b], self.positions[b]
        if not ids:
            return
        text = "\n".join(ids)
        as_json = text.count("\n") != len(ids) - 1
        data = json.dumps(ids).encode() if as_json else text.encode("utf-8", "surrogatepass")
        numbers = positions.tobytes()
        self._file.seek(0, 2)
        offset = self._file.tell()
        self._file.write(numbers)
        self._file.write(data)
        self._blocks[b].append(_Block(offset, len(numbers), len(data), as_json, "#" in text))
        self.disk_bytes += len(numbers) + len(data)
        ids.clear()
        del positions[:]

    def _read(self, block: _Block) -> tuple[list[str], array]:
        self._file.seek(block.offset)
        numbers = array("q")
        numbers.frombytes(self._file.read(block.positions))
        data = self._file.read(block.ids)
        ids = json.loads(data) if block.as_json else data.decode("utf-8", "surrogatepass").split("\n")
        return ids, numbers

    def _bucket(self, b: int) -> tuple[list[str], array]:
        ids: list[str] = []
        numbers = array("q")
        for block in self._blocks[b]:
            more, at = self._read(block)
            ids += more
            numbers += at
        return ids, numbers

    def finish(self, suffix_names: bool = False) -> Repeats:
        """The repeated ids, how often each occurs, and the first repeats by item number.

        With ``suffix_names``, also the ids of the stream that ``id#k`` suffixes of repeated ids
        would collide with (``Repeats.taken``).
        """
        for b in range(self.buckets):
            self.flush(b)
        found = Repeats()
        for b in range(self.buckets):
            ids, numbers = self._bucket(b)
            if len(set(ids)) != len(ids):
                found.note_bucket(ids, numbers)
        if suffix_names and len(found.counts):
            found.taken = self._taken(found.counts)
        return found

    def _taken(self, counts: IdCounts) -> set[str]:
        """Ids of the stream shaped ``<repeated id>#<k>``, k >= 2: names a suffix must pass over."""
        taken = set()
        for blocks in self._blocks:
            for block in blocks:
                if not block.has_hash:
                    continue
                for qid in self._read(block)[0]:
                    base, _, k = qid.rpartition("#")
                    if base and k.isascii() and k.isdigit() and int(k) >= 2 and base in counts:
                        taken.add(qid)
        return taken

    def close(self) -> None:
        self._file.close()


@dataclass
class Repeats:
    """The repeated ids of a stream: ``counts`` (id -> occurrences), ``extra`` (items repeating an
    earlier id), ``examples`` (the first of those by item number) and ``taken`` (see ``DuplicateFinder``)."""

    counts: IdCounts = field(default_factory=IdCounts)
    extra: int = 0
    taken: set[str] = field(default_factory=set)
    _earliest: list[tuple[int, str, int]] = field(default_factory=list)  # a heap of (-item, id, first item)

    def note_bucket(self, ids: list[str], numbers: array) -> None:
        """Count the repeats among one bucket's ids (in stream order)."""
        first: dict[str, int] = {}
        counts, earliest = self.counts, self._earliest
        for qid, n in zip(ids, numbers):
            at = first.setdefault(qid, n)
            if at == n:
                continue
            self.extra += 1
            seen = counts.get(qid)
            counts.set(qid, seen + 1 if seen else 2)
            if len(earliest) < EXAMPLES:
                heapq.heappush(earliest, (-n, qid, at))
            elif n < -earliest[0][0]:
                heapq.heapreplace(earliest, (-n, qid, at))

    @property
    def examples(self) -> list[Offence]:
        """The first repeats by item number."""
        return sorted(Offence(-m, "duplicate", f"item {-m} repeats id {qid!r} (first at item {at})")
                      for m, qid, at in self._earliest)
