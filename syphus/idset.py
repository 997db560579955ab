"""IdSet: a compact set of string ids, 16 bytes an id instead of ~100.

Resume and duplicate checks must remember every id of a 10^7-query run; a
Python ``set`` of strings would hold gigabytes. IdSet keeps a 64-bit hash per
id in an open-addressing table (an ``array('Q')``). The hash is Python's own
string hash (SipHash, computed in C and cached on the string): keys live only
in this process, so its per-process seed does not matter. Two different ids
collide with probability about n^2 / 2^65 (10^-5 at n = 10^7), which at worst
treats an unseen id as seen: the caller records it, nothing is silently lost.

>>> s = IdSet()
>>> s.add("v_abc"), s.add("v_abc"), "v_abc" in s, "v_x" in s, len(s)
(True, False, True, False, 1)
"""

from __future__ import annotations

from array import array
from typing import Iterable

_EMPTY = 0
_MASK64 = (1 << 64) - 1


def id_key(item: str) -> int:
    """A 64-bit key for ``item``, never 0 (0 marks an empty slot); stable within this process only."""
    return (hash(item) & _MASK64) or 1


class IdSet:
    """A growable set of string ids (``add``, ``in``, ``len``); no removal."""

    __slots__ = ("_table", "_mask", "_len")

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._table = array("Q", bytes(8 * 1024))
        self._mask = 1023
        self._len = 0
        for item in items:
            self.add(item)

    def _slot(self, key: int) -> int:
        table, mask = self._table, self._mask
        i = key & mask
        while True:
            k = table[i]
            if k == _EMPTY or k == key:
                return i
            i = (i + 1) & mask

    def add(self, item: str) -> bool:
        """Add ``item``; True if it was new."""
        key = id_key(item)
        i = self._slot(key)
        if self._table[i] == key:
            return False
        self._table[i] = key
        self._len += 1
        if self._len * 2 > self._mask:
            self._grow()
        return True

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        key = id_key(item)
        return self._table[self._slot(key)] == key

    def __len__(self) -> int:
        return self._len

    def _grow(self) -> None:
        old = self._table
        self._table = array("Q", bytes(8 * len(old) * 2))
        self._mask = len(self._table) - 1
        for key in old:
            if key != _EMPTY:
                self._table[self._slot(key)] = key
