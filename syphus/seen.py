"""SeenIds: exact "seen this id before?" for a stream of any length, in ~2 bytes of memory an id.

Duplicate checks must cover every id of a 10^7-query stream without holding
them. A scalable Bloom filter in memory answers "certainly new" for almost
every id; its rare "maybe" (about 1 in 1000) is settled exactly by searching
the 64-bit keys of all ids seen so far, which live in an unnamed temporary
file, not in memory.

>>> seen = SeenIds()
>>> seen.add("v_1"), seen.add("v_2"), seen.add("v_1")
(True, True, False)
"""

from __future__ import annotations

import math
import tempfile

from syphus.idset import id_key

_CHUNK = 1 << 20  # a multiple of 8, so keys never straddle two reads


class _Bloom:
    __slots__ = ("bits", "m", "k", "capacity", "count")

    def __init__(self, capacity: int, fp: float):
        self.m = max(64, math.ceil(-capacity * math.log(fp) / (math.log(2) ** 2)))
        self.k = max(1, round(self.m / capacity * math.log(2)))
        self.bits = bytearray((self.m + 7) // 8)
        self.capacity = capacity
        self.count = 0

    def add(self, key: int) -> None:
        bits, m, h, step = self.bits, self.m, key & 0xFFFFFFFF, (key >> 32) | 1
        for _ in range(self.k):
            p = h % m
            bits[p >> 3] |= 1 << (p & 7)
            h += step
        self.count += 1

    def __contains__(self, key: int) -> bool:
        bits, m, h, step = self.bits, self.m, key & 0xFFFFFFFF, (key >> 32) | 1
        for _ in range(self.k):
            p = h % m
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
            h += step
        return True


class SeenIds:
    """``add(id)`` is True the first time an id is seen, False ever after; exact."""

    def __init__(self, capacity: int = 1 << 20, fp: float = 1e-3):
        self._filters = [_Bloom(capacity, fp / 2)]
        self._fp = fp
        self._log = tempfile.TemporaryFile()
        self._len = 0
        self.disk_checks = 0

    def __len__(self) -> int:
        return self._len

    def _on_disk(self, key: int) -> bool:
        self.disk_checks += 1
        needle = key.to_bytes(8, "little")
        log = self._log
        log.flush()
        log.seek(0)
        try:
            while True:
                chunk = log.read(_CHUNK)
                if not chunk:
                    return False
                i = chunk.find(needle)
                while i >= 0:
                    if i % 8 == 0:
                        return True
                    i = chunk.find(needle, i + 1)
        finally:
            log.seek(0, 2)

    def add(self, item: str) -> bool:
        key = id_key(item)
        if any(key in f for f in self._filters) and self._on_disk(key):
            return False
        last = self._filters[-1]
        if last.count >= last.capacity:  # grow: each new filter twice as big, half the error rate
            last = _Bloom(last.capacity * 2, self._fp / 2 ** (len(self._filters) + 1))
            self._filters.append(last)
        last.add(key)
        self._log.write(key.to_bytes(8, "little"))
        self._len += 1
        return True

    def close(self) -> None:
        self._log.close()
