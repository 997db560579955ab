"""DiskJoin: which referenced ids are absent from a huge set of present ids, in flat memory.

Validating 10^6 instructions against an image file of millions of frames would
need every image id in memory. DiskJoin instead spills 64-bit keys into hash
buckets in a temporary folder, then joins one bucket at a time. References come
in named groups, each answered on its own.

>>> j = DiskJoin()
>>> for i in ("a", "b"): j.present(i)
>>> for r in ("a", "c", "c"): j.reference(r)
>>> j.reference("b", group="fixes")
>>> j.missing() == {j.key("c")}, j.missing_counts["refs"], j.missing("fixes")
(True, 2, set())

Keys are Python's string hash (stable within this process).
"""

from __future__ import annotations

import tempfile
from array import array
from pathlib import Path

from syphus.idset import id_key

_BUCKETS = 64
_FLUSH = 8192  # keys a bucket buffers before they go to disk


class DiskJoin:
    """Feed ``present(id)`` and ``reference(id, group)`` in any order, then ask what was missing."""

    key = staticmethod(id_key)

    def __init__(self, buckets: int = _BUCKETS):
        self._dir = tempfile.TemporaryDirectory(prefix="syphus-join-")
        self._n = buckets
        self._buf: dict[str, list[array]] = {}
        self.missing_counts: dict[str, int] = {}

    def _add(self, side: str, k: int) -> None:
        bufs = self._buf.get(side)
        if bufs is None:
            bufs = self._buf[side] = [array("Q") for _ in range(self._n)]
        b = k % self._n
        bufs[b].append(k)
        if len(bufs[b]) >= _FLUSH:
            self._spill(side, b)

    def _spill(self, side: str, b: int) -> None:
        buf = self._buf.get(side, [array("Q")] * self._n)[b]
        if buf:
            with open(Path(self._dir.name) / f"{side}.{b}", "ab") as f:
                buf.tofile(f)
            del buf[:]

    def _load(self, side: str, b: int) -> array:
        self._spill(side, b)
        out = array("Q")
        path = Path(self._dir.name) / f"{side}.{b}"
        if path.exists():
            out.frombytes(path.read_bytes())
        return out

    def present(self, item: str) -> None:
        self._add("present", id_key(item))

    def reference(self, item: str, group: str = "refs") -> None:
        self._add("ref-" + group, id_key(item))

    def missing(self, group: str = "refs", limit: int = 100_000) -> set[int]:
        """Keys of ``group`` that are not present (at most ``limit``); ``missing_counts[group]`` counts all."""
        found: set[int] = set()
        count = 0
        side = "ref-" + group
        for b in range(self._n):
            refs = self._load(side, b)
            if not refs:
                continue
            present = set(self._load("present", b))
            for k in refs:
                if k not in present:
                    count += 1
                    if len(found) < limit:
                        found.add(k)
        self.missing_counts[group] = count
        return found

    def close(self) -> None:
        self._dir.cleanup()
