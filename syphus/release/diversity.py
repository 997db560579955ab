"""Diversity: how many instructions of a dataset nearly repeat an earlier one, and how spread their openings are.

``EarlierSimilar`` takes a dataset's instructions in order (``add``, their words) and finds, for each,
whether an *earlier* instruction has a ROUGE-L of ``threshold`` or more with it (Self-Instruct drops
an instruction at 0.7). ROUGE-L is the F-measure of the longest common subsequence of the two word
sequences: ``2 * LCS / (len(a) + len(b))``. No pair is compared unless it is a candidate:

- each instruction gets a MinHash signature of its set of words (``num_perm`` values, computed in
  numpy a block at a time), cut into ``bands`` of ``rows`` values; instructions that agree on a
  whole band share a bucket. A pair at ROUGE-L 0.7 shares about half its words or more (Jaccard of
  the word sets), and the bands are sized so such a pair shares some bucket with probability above
  0.99 (``bench/diversity.py`` measures the recall against an exact scan of every pair);
- in each band, an instruction not yet found similar is compared with the ``nearest`` earlier
  members of each of its buckets, and the comparison is exact: the LCS of the two word sequences,
  bit-parallel (Allison-Dix; 64 words a machine word), for thousands of pairs at once in numpy.

Memory per instruction: its words as 4-byte hashes, where they end, one flag; the band keys are
spooled to a temporary file and read back a band at a time. Time grows with the number of
instructions times the bands, not with its square.

>>> rouge_l("what is the man holding".split(), "what is the woman holding".split())
0.8
>>> index = EarlierSimilar()
>>> for text in ["What is the man holding in his hand?", "Where does the bus go?",
...              "What is the woman holding in her hand?", "Where does the bus go?"]:
...     index.add(text.lower().rstrip("?").split())
>>> index.similar().tolist()
[False, False, True, True]
"""

from __future__ import annotations

import math
import tempfile
import zlib
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

try:
    import numpy as np
except ImportError:  # without the extra ``report``: EarlierSimilar() says what to install
    np = None  # type: ignore[assignment]

from syphus.errors import UserError

THRESHOLD = 0.7  # Self-Instruct's: an instruction this close to one already kept is dropped
NUM_PERM = 64
ROWS = 2  # values a band: 32 bands of 2 (see bench/diversity.py for the recall this buys)
NEAREST = 16  # earlier members of a bucket an instruction is compared with, in each band
BLOCK = 4096  # instructions signed at a time
PAIRS_AT_ONCE = 1 << 14  # pairs whose LCS is computed in one numpy pass, at most
TABLE_CELLS = 1 << 20  # and at most this many (pair, token) cells of its match table (8 bytes each)
SIGN_TOKENS = 1 << 15  # words hashed by every permutation at once (num_perm * 8 bytes each)
TOP = 10  # leading words listed with their shares
HINT = "pip install 'syphus[report]' (or: pip install -e '.[report]')"

_PRIME = (1 << 61) - 1
_MIX = 0x9E3779B97F4A7C15
_FULL = 0xFFFFFFFFFFFFFFFF


def lcs(a: Sequence[Any], b: Sequence[Any]) -> int:
    """The length of the longest common subsequence of two sequences (the plain dynamic programme)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for k, y in enumerate(b):
            row.append(prev[k] + 1 if x == y else max(prev[k + 1], row[k]))
        prev = row
    return prev[-1]


def rouge_l(a: Sequence[Any], b: Sequence[Any]) -> float:
    """ROUGE-L F-measure of two token sequences: 2 * LCS / (len(a) + len(b)); 0 when either is empty."""
    return 2 * lcs(a, b) / (len(a) + len(b)) if a and b else 0.0


def lcs_lengths(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, i: np.ndarray,
                j: np.ndarray) -> np.ndarray:
    """LCS lengths of many pairs of token sequences at once: pair k is the sequence of item ``i[k]`` and
    that of item ``j[k]`` (item x holds ``flat[starts[x]:starts[x] + lengths[x]]``).

    Bit-parallel: the shorter sequence of a pair (up to 64 tokens) is a bit mask per token, and each
    token of the longer one updates a 64-bit row ``V`` by ``V = (V + U) | (V - U)``, ``U = V & match``;
    the LCS is the number of zero bits. A pair whose both sequences exceed 64 tokens is computed the
    plain way.
    """
    out = np.zeros(len(i), dtype=np.int64)
    swap = lengths[i] > lengths[j]
    short, long_ = np.where(swap, j, i), np.where(swap, i, j)
    m, n = lengths[short], lengths[long_]
    slow = np.flatnonzero(m > 64)
    for k in slow.tolist():
        out[k] = lcs(flat[starts[short[k]]:starts[short[k]] + m[k]].tolist(),
                     flat[starts[long_[k]]:starts[long_[k]] + n[k]].tolist())
    fast = np.flatnonzero((m <= 64) & (m > 0) & (n > 0))
    fast = fast[np.argsort(n[fast], kind="stable")]  # similar lengths together: the table stays small
    lo = 0
    while lo < len(fast):
        size = PAIRS_AT_ONCE
        while size > 1 and int(n[fast[min(lo + size, len(fast)) - 1]]) * size > TABLE_CELLS:
            size //= 2
        ks = fast[lo:lo + size]
        out[ks] = _lcs_block(flat, starts, short[ks], m[ks], long_[ks], n[ks])
        lo += size
    return out


def _spread_index(start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(which pair, position, flat index) of every token of the given segments."""
    total = int(length.sum())
    pair = np.repeat(np.arange(len(length)), length)
    pos = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
    return pair, pos, np.repeat(start, length) + pos


def _lcs_block(flat: np.ndarray, starts: np.ndarray, a: np.ndarray, m: np.ndarray, b: np.ndarray,
               n: np.ndarray) -> np.ndarray:
    p_a, pos_a, at_a = _spread_index(starts[a], m)
    key_a = (p_a.astype(np.uint64) << np.uint64(32)) | flat[at_a].astype(np.uint64)
    order = np.argsort(key_a, kind="stable")
    key_a, bits = key_a[order], np.left_shift(np.uint64(1), pos_a[order].astype(np.uint64))
    first = np.flatnonzero(np.concatenate(([True], key_a[1:] != key_a[:-1])))
    keys, masks = key_a[first], np.bitwise_or.reduceat(bits, first)  # per (pair, token): where it is in a
    p_b, pos_b, at_b = _spread_index(starts[b], n)
    key_b = (p_b.astype(np.uint64) << np.uint64(32)) | flat[at_b].astype(np.uint64)
    at = np.minimum(np.searchsorted(keys, key_b), len(keys) - 1)
    match = np.where(keys[at] == key_b, masks[at], np.uint64(0))
    table = np.zeros((len(a), int(n.max())), dtype=np.uint64)
    table[p_b, pos_b] = match
    v = np.full(len(a), _FULL, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in range(table.shape[1]):
            u = v & table[:, col]
            v = (v + u) | (v - u)
    low = np.where(m >= 64, np.uint64(_FULL),
                   np.left_shift(np.uint64(1), np.minimum(m, 63).astype(np.uint64)) - np.uint64(1))
    return m - np.bitwise_count(v & low).astype(np.int64)


class EarlierSimilar:
    """The instructions of one dataset, in order; ``similar()`` says which have an earlier one at
    ROUGE-L ``threshold`` or more."""

    def __init__(self, threshold: float = THRESHOLD, num_perm: int = NUM_PERM, rows: int = ROWS,
                 nearest: int = NEAREST, seed: int = 1):
        if np is None:
            raise UserError(f"the diversity figures need numpy: {HINT}")
        if not 0 < threshold <= 1:
            raise UserError(f"the ROUGE-L threshold must be above 0 and at most 1 (got {threshold})")
        self.threshold, self.num_perm, self.rows, self.nearest = threshold, num_perm, rows, nearest
        self.bands = num_perm // rows
        rng = np.random.RandomState(seed)
        self._a = rng.randint(1, 1 << 31, num_perm).astype(np.uint64)
        self._b = rng.randint(0, 1 << 31, num_perm).astype(np.uint64)
        self._salts = np.arange(1, self.bands + 1, dtype=np.uint64) * np.uint64(0x632BE59BD9B4E019)
        self._flat = array("I")  # every instruction's words, hashed, in order
        self._ends = array("Q")
        self._signed = 0  # instructions whose band keys are spooled
        self._spool = tempfile.TemporaryFile(prefix="syphus-diversity-")
        self.n = 0
        self.compared = 0

    def add(self, text_words: Iterable[str]) -> None:
        """Add the next instruction, as its words (``syphus.signals.words``)."""
        self._flat.extend(zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in text_words)
        self._ends.append(len(self._flat))
        self.n += 1
        if self.n - self._signed == BLOCK:
            self._sign()

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        flat = np.frombuffer(self._flat, dtype=np.uint32) if len(self._flat) else np.zeros(0, dtype=np.uint32)
        ends = np.frombuffer(self._ends, dtype=np.uint64).astype(np.int64) if self.n else np.zeros(0, np.int64)
        starts = np.concatenate(([0], ends[:-1])) if self.n else ends
        return flat, starts, ends - starts

    def _sign(self) -> None:
        """Band keys of the instructions added since the last block: MinHash of the word set, then one
        32-bit key per band (an instruction without words is never a candidate)."""
        flat, starts, lengths = self._arrays()
        lo, hi = self._signed, self.n
        keys = np.zeros((self.bands, hi - lo), dtype=np.uint32)
        sl, ln = starts[lo:hi], lengths[lo:hi]
        full = np.flatnonzero(ln > 0)
        sig = np.zeros((len(full), self.num_perm), dtype=np.uint64)
        done = 0
        while done < len(full):  # a few thousand words at a time: the hash table stays small
            upto = done + max(1, int(np.searchsorted(np.cumsum(ln[full[done:]]), SIGN_TOKENS, side="right")))
            part = full[done:upto]
            base = int(sl[part[0]])
            tokens = flat[base:int(sl[part[-1]] + ln[part[-1]])].astype(np.uint64)
            with np.errstate(over="ignore"):
                h = ((tokens[:, None] * self._a + self._b) % np.uint64(_PRIME)) & np.uint64(0xFFFFFFFF)
            sig[done:upto] = np.minimum.reduceat(h, (sl[part] - base).astype(np.int64), axis=0)
            done = upto
        mix = np.uint64(_MIX)
        with np.errstate(over="ignore"):
            for band in range(self.bands):
                k = np.full(len(full), self._salts[band], dtype=np.uint64)
                for c in range(band * self.rows, (band + 1) * self.rows):
                    k = (k ^ sig[:, c]) * mix
                keys[band, full] = ((k >> np.uint64(32)) ^ k).astype(np.uint32)
        self._spool.write(np.full(self.bands, hi - lo, dtype=np.uint32).tobytes() + keys.tobytes())
        self._signed = hi

    def _band_keys(self, band: int) -> np.ndarray:
        out = np.empty(self.n, dtype=np.uint32)
        self._spool.seek(0)
        at = 0
        while at < self.n:
            size = int(np.frombuffer(self._spool.read(4 * self.bands), dtype=np.uint32)[0])
            block = self._spool.tell()
            self._spool.seek(block + 4 * size * band)
            self._spool.readinto(memoryview(out[at:at + size]).cast("B"))
            self._spool.seek(block + 4 * size * self.bands)
            at += size
        return out

    def similar(self) -> np.ndarray:
        """A bool per instruction: True when an earlier one has ROUGE-L ``threshold`` or more with it
        (call once, after the last ``add``)."""
        if self.n > self._signed:
            self._sign()
        flat, starts, lengths = self._arrays()
        found = np.zeros(self.n, dtype=bool)
        items = np.flatnonzero(lengths > 0)
        for band in range(self.bands):
            keys = self._band_keys(band)[items]
            order = np.argsort(keys, kind="stable")  # items ascend within a bucket: earlier first
            ordered, members = keys[order], items[order]
            new = np.concatenate(([True], ordered[1:] != ordered[:-1])) if len(ordered) else np.zeros(0, bool)
            rank = np.arange(len(ordered)) - np.maximum.accumulate(np.where(new, np.arange(len(ordered)), 0))
            for d in range(1, self.nearest + 1):
                at = np.flatnonzero(rank >= d)
                at = at[~found[members[at]]]
                if not len(at):
                    break
                i, j = members[at], members[at - d]
                lcs = lcs_lengths(flat, starts, lengths, i, j)
                self.compared += len(at)
                hit = 2 * lcs >= self.threshold * (lengths[i] + lengths[j]) - 1e-9
                found[i[hit]] = True
        self._spool.close()
        return found

    def settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "num_perm": self.num_perm, "bands": self.bands, "rows": self.rows,
                "nearest": self.nearest, "compared_pairs": self.compared}


def spread(counts: Sequence[tuple[str, int]] | dict[str, int], total: int | None = None,
           top: int = TOP) -> dict[str, Any]:
    """How spread a count of keys is: the top keys with their shares, the entropy in bits and the
    effective number of keys (2 ** entropy: as many equally common keys would give the same entropy).

    >>> spread({"describe": 2, "what": 1, "how": 1})["effective_number"]
    2.83
    """
    items = sorted(dict(counts).items(), key=lambda kv: (-kv[1], kv[0]))
    n = total if total is not None else sum(c for _, c in items)
    if not n:
        return {"total": 0, "distinct": 0, "top": [], "entropy_bits": 0.0, "effective_number": 0.0}
    entropy = -sum(c / n * math.log2(c / n) for _, c in items if c)
    return {"total": n, "distinct": len(items), "top": [[k, c, round(c / n, 4)] for k, c in items[:top]],
            "entropy_bits": round(entropy, 3), "effective_number": round(2 ** entropy, 2)}
