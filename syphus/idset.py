"""IdSet: a compact set of string ids, 16 bytes an id instead of ~100; IdCounts: the same with a count each.

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


class IdCounts(IdSet):
    """A compact map from string ids to counts (``get``, ``set``, ``in``, ``len``); absent ids count 0.

    IdSet's table of 64-bit keys, with the counts in a parallel array: what ``--on_duplicate``
    remembers about each repeated id (how often it occurs, how far the run has got) in 32 to 64
    bytes an id (16 a slot, at most half of them used) instead of a dict's ~150.

    >>> c = IdCounts()
    >>> c.set("v_1", 3); c.get("v_1"), c.get("v_2"), "v_1" in c, len(c)
    (3, 0, True, 1)
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        super().__init__()
        self._values = array("Q", bytes(8 * len(self._table)))

    def get(self, item: str) -> int:
        """The count of ``item`` (0 when it was never set)."""
        key = id_key(item)
        i = self._slot(key)
        return self._values[i] if self._table[i] == key else 0

    def set(self, item: str, count: int) -> None:
        """Set the count of ``item`` (a count of 0 keeps the id in the map)."""
        key = id_key(item)
        i = self._slot(key)
        self._values[i] = count
        if self._table[i] != key:
            self._table[i] = key
            self._len += 1
            if self._len * 2 > self._mask:
                self._grow()

    def copy(self) -> IdCounts:
        """An independent copy (the arrays are copied in C)."""
        other = IdCounts()
        other._table, other._values = array("Q", self._table), array("Q", self._values)
        other._mask, other._len = self._mask, self._len
        return other

    def _grow(self) -> None:
        old_keys, old_values = self._table, self._values
        size = len(old_keys) * 2
        self._table, self._values = array("Q", bytes(8 * size)), array("Q", bytes(8 * size))
        self._mask = size - 1
        for key, value in zip(old_keys, old_values):
            if key != _EMPTY:
                i = self._slot(key)
                self._table[i], self._values[i] = key, value
