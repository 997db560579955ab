"""Dedup: near-duplicate and exact-duplicate texts across a whole dataset, in compact memory.

``NearDuplicates`` takes texts one at a time (``add``; the n-th text added is item n) and
``clusters()`` groups them:

- *exact duplicates*: the same text once case and runs of white space are set aside (a
  64-bit hash of it, 8 bytes an item);
- *near duplicates*: texts whose word shingles (``shingle`` words in a row, lower-cased)
  have a Jaccard similarity of at least ``threshold``. Each text gets a MinHash signature
  (``datasketch``, ``num_perm`` permutations over its shingles hashed to 32 bits); the
  signature is cut into ``bands`` of ``rows`` values (LSH), and texts that agree on a whole
  band are candidates. A candidate is joined to a cluster only when the exact Jaccard
  similarity of the two shingle sets reaches the threshold, so no pair below it is ever
  joined, and ``rows`` is chosen so that a pair at the threshold agrees on some band with
  probability 0.999 or more. Clusters are the connected groups of such pairs. In a band,
  the members of a bucket are compared with up to ``REPRESENTATIVES`` of its members (in
  rounds, every bucket at once, in numpy), not with each other: a bucket of texts that share
  only a template ("What is the ... doing in the ...?") costs a few passes, not its square.

Memory holds, per item, its shingle hashes (4 bytes a shingle), the exact hash, where its
shingles end and the union-find parent: about 70 bytes for an instruction. Signatures are
hashed to one 4-byte key per band a block at a time and spooled to a temporary file (144 bytes
an item at 256 permutations), read back one band at a time, so more permutations (sharper
candidates) cost disk, not memory. The banding is done on sorted numpy arrays rather than
``datasketch.MinHashLSH``, whose index keeps a set and a bytes key per band per item (about
4 KB an item: 4 GB for 10^6 instructions).

Everything is deterministic: the same texts in the same order give the same clusters, and each
cluster's first item (its ``root``) is the one with the lowest number, so "keep the first by id"
is "keep the roots" when texts are added in id order.

>>> finder = NearDuplicates(threshold=0.7, shingle=2)
>>> for text in ["What is the man holding in his left hand?", "What is the man holding in his left hand now?",
...              "Where does the bus go?", "what is the man  holding in his left hand?"]:
...     finder.add(text)
>>> c = finder.clusters()
>>> c.root.tolist(), c.exact_root.tolist(), int(c.dropped().sum())
([0, 0, 2, 0], [0, 1, 2, 0], 2)
>>> [m.tolist() for m in c.largest(1)]
[[0, 1, 3]]
"""

from __future__ import annotations

import hashlib
import tempfile
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from syphus.errors import UserError
from syphus.signals import words

try:
    import numpy as np
except ImportError:  # without the extra ``report``: minhash_module() says what to install
    np = None  # type: ignore[assignment]

THRESHOLD = 0.8
SHINGLE = 2
NUM_PERM = 256
BLOCK = 4096  # signatures hashed into band keys this many at a time
RECALL = 0.999  # least probability that a pair at the threshold shares a band
REPRESENTATIVES = 8  # items of one bucket that the others are compared with
PAIRS_AT_ONCE = 1 << 16  # candidate pairs compared in one numpy pass (bounds the memory it takes)
HINT = "pip install 'syphus[report]' (or: pip install -e '.[report]')"

_MIX = 0x9E3779B97F4A7C15  # odd 64-bit multiplier of the band-key hash


def minhash_module() -> Any:
    """``datasketch`` (and numpy), or a UserError naming the extra that installs them."""
    try:
        import datasketch
        import numpy  # noqa: F401
    except ImportError:
        raise UserError(f"near-duplicate search needs the datasketch package: {HINT}") from None
    return datasketch


def band_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows): the most rows a band may have while a pair at ``threshold`` still shares a
    band with probability ``RECALL`` (more rows: fewer candidates to check).

    >>> band_shape(0.8, 64), band_shape(0.9, 64), band_shape(0.5, 128)
    ((16, 4), (10, 6), (64, 2))
    """
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if bands < 2 or 1 - (1 - threshold ** rows) ** bands < RECALL:
            break
        best = (bands, rows)
    return best


def shingles(text: str, size: int = SHINGLE, text_words: Sequence[str] | None = None) -> list[str]:
    """The word shingles of ``text``: ``size`` lower-cased words in a row (a shorter text is one shingle).
    ``text_words``: its words (``syphus.signals.words``), when they are at hand already.

    >>> shingles("What is the dog doing?"), shingles("Describe it.", 3), shingles("?")
    (['what is', 'is the', 'the dog', 'dog doing'], ['describe it'], [])
    """
    ws = text_words if text_words is not None else words(text)
    if len(ws) <= size:
        return [" ".join(ws)] if ws else []
    return [" ".join(ws[i:i + size]) for i in range(len(ws) - size + 1)]


def exact_key(text: str) -> int:
    """A 64-bit hash of ``text`` with case and runs of white space set aside."""
    norm = " ".join(text.split()).casefold() if text else ""
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


@dataclass
class Clusters:
    """The clusters of ``n`` items: ``root[i]`` is the first item of item i's near-duplicate
    cluster (i itself when it has no near duplicate); ``exact_root`` the same for exact duplicates."""

    n: int
    root: np.ndarray
    exact_root: np.ndarray
    threshold: float
    shingle: int
    num_perm: int
    bands: int
    rows: int
    compared: int = 0  # candidate pairs whose shingles were compared
    empty: int = 0  # items without a word (never a near duplicate)
    _sizes: np.ndarray | None = field(default=None, repr=False)

    def dropped(self) -> np.ndarray:
        """A bool per item: True for each item that is not the first of its near-duplicate cluster."""
        return self.root != np.arange(self.n, dtype=self.root.dtype)

    def exact_dropped(self) -> np.ndarray:
        """A bool per item: True for each repeat of an earlier item's exact text."""
        return self.exact_root != np.arange(self.n, dtype=self.exact_root.dtype)

    def sizes(self) -> np.ndarray:
        """The size of each item's cluster, indexed by root (0 for items that are no root)."""
        if self._sizes is None:
            self._sizes = np.bincount(self.root, minlength=self.n) if self.n else np.zeros(0, dtype=np.int64)
        return self._sizes

    def size_counts(self, exact: bool = False) -> dict[int, int]:
        """{cluster size: how many clusters} for clusters of two or more."""
        sizes = self.sizes() if not exact else (np.bincount(self.exact_root, minlength=self.n) if self.n
                                                else np.zeros(0, dtype=np.int64))
        values, counts = np.unique(sizes[sizes > 1], return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def largest(self, k: int, exact: bool = False) -> list[np.ndarray]:
        """The members of the ``k`` largest clusters (of two or more), largest first, ties by first item."""
        root = self.exact_root if exact else self.root
        sizes = np.bincount(root, minlength=self.n) if self.n else np.zeros(0, dtype=np.int64)
        roots = np.flatnonzero(sizes > 1)
        order = np.argsort(-sizes[roots], kind="stable")[:k]
        return [np.flatnonzero(root == r) for r in roots[order]]

    def summary(self) -> dict[str, Any]:
        """Counts and settings, as the report and export show them."""
        drop, exact = self.dropped(), self.exact_dropped()
        sizes = self.sizes()
        return {"items": self.n, "threshold": self.threshold, "shingle_words": self.shingle,
                "num_perm": self.num_perm, "bands": self.bands, "rows": self.rows,
                "clusters": int((sizes > 1).sum()), "in_clusters": int(sizes[sizes > 1].sum()),
                "near_duplicates": int(drop.sum()), "exact_duplicates": int(exact.sum()),
                "exact_groups": sum(self.size_counts(exact=True).values()),
                "compared_pairs": self.compared, "empty": self.empty}


class NearDuplicates:
    """Collects texts (``add``) and finds their exact and near-duplicate clusters (``clusters``)."""

    def __init__(self, threshold: float = THRESHOLD, shingle: int = SHINGLE, num_perm: int = NUM_PERM,
                 seed: int = 1):
        if not 0 < threshold <= 1:
            raise UserError(f"the near-duplicate threshold must be above 0 and at most 1 (got {threshold})")
        if shingle < 1:
            raise UserError(f"shingles must be at least one word (got {shingle})")
        if num_perm < 2:
            raise UserError(f"num_perm must be at least 2 (got {num_perm})")
        ds = minhash_module()
        self.threshold, self.shingle, self.num_perm = threshold, shingle, num_perm
        self.bands, self.rows = band_shape(threshold, num_perm)
        self._minhash = ds.MinHash(num_perm=num_perm, seed=seed, hashfunc=int, scheme="affine32")
        self._flat = array("I")  # every item's shingle hashes, sorted, each once
        self._ends = array("Q")  # where each item's shingle hashes end in _flat
        self._exact = array("Q")
        self._block = np.zeros((BLOCK, num_perm), dtype=np.uint32)
        self._in_block = 0
        self._spool = tempfile.TemporaryFile(prefix="syphus-dedup-")  # (bands, BLOCK) uint32 per block
        self._blocks = 0
        self._salts = (np.arange(1, self.bands + 1, dtype=np.uint64) * np.uint64(0x632BE59BD9B4E019))
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None  # (shingles, ends) as numpy, while clustering
        self.n = 0
        self.empty = 0

    def add(self, text: str, text_words: Sequence[str] | None = None) -> None:
        """Add the next text (item ``n``); ``text_words``: its words, when they are at hand already."""
        hashes = sorted({zlib.crc32(s.encode("utf-8", "surrogatepass"))
                         for s in shingles(text, self.shingle, text_words)})
        self._flat.extend(hashes)
        self._ends.append(len(self._flat))
        self._exact.append(exact_key(text))
        m = self._minhash
        m.clear()
        if hashes:
            m.update_batch(hashes)
        else:
            self.empty += 1
        self._block[self._in_block] = m.hashvalues
        self._in_block += 1
        self.n += 1
        if self._in_block == BLOCK:
            self._hash_block()

    def _hash_block(self) -> None:
        """Turn the block's signatures into one key per band (an FNV-style mix of the band's values)."""
        sig = self._block[:self._in_block].astype(np.uint64)
        keys = np.zeros((self.bands, BLOCK), dtype=np.uint32)
        mix = np.uint64(_MIX)
        with np.errstate(over="ignore"):
            for b in range(self.bands):
                h = np.full(self._in_block, self._salts[b], dtype=np.uint64)
                for c in range(b * self.rows, (b + 1) * self.rows):
                    h = (h ^ sig[:, c]) * mix
                keys[b, :self._in_block] = ((h >> np.uint64(32)) ^ h).astype(np.uint32)
        self._spool.write(keys.tobytes())
        self._blocks += 1
        self._in_block = 0

    def _band(self, b: int) -> np.ndarray:
        """Band ``b``'s key of every item, read back from the spool."""
        out = np.empty(self._blocks * BLOCK, dtype=np.uint32)
        row = BLOCK * 4
        for k in range(self._blocks):
            self._spool.seek((k * self.bands + b) * row)
            self._spool.readinto(memoryview(out[k * BLOCK:(k + 1) * BLOCK]).cast("B"))
        return out[:self.n]

    def clusters(self) -> Clusters:
        """The clusters of everything added so far (call once, after the last ``add``)."""
        if self._in_block:
            self._hash_block()
        n = self.n
        ends = np.frombuffer(self._ends, dtype=np.uint64) if n else np.zeros(0, dtype=np.uint64)
        parent = array("q", range(n))
        exact = np.frombuffer(self._exact, dtype=np.uint64) if n else np.zeros(0, dtype=np.uint64)
        exact_root = self._exact_groups(exact, parent)
        compared = 0
        nonempty = np.flatnonzero(np.diff(ends, prepend=np.uint64(0)) > 0)
        self._arrays = (np.frombuffer(self._flat, dtype=np.uint32), ends.astype(np.int64))
        for b in range(self.bands):
            compared += self._join_band(self._band(b)[nonempty], nonempty, parent)
        self._spool.close()
        self._arrays = None
        root = np.frombuffer(array("q", (_find(parent, i) for i in range(n))), dtype=np.int64) if n \
            else np.zeros(0, dtype=np.int64)
        return Clusters(n, root.copy(), exact_root, self.threshold, self.shingle, self.num_perm, self.bands,
                        self.rows, compared, self.empty)

    @staticmethod
    def _exact_groups(exact: np.ndarray, parent: array) -> np.ndarray:
        """Join each exact repeat to the first item of its text; returns that first item per item."""
        n = len(exact)
        first = np.arange(n, dtype=np.int64)
        if n < 2:
            return first
        order = np.argsort(exact, kind="stable")
        sorted_keys = exact[order]
        new_run = np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))
        run_first = order[np.flatnonzero(new_run)]
        run_of = np.cumsum(new_run) - 1
        first[order] = run_first[run_of]
        for i in np.flatnonzero(first != np.arange(n)).tolist():
            parent[i] = int(first[i])  # the first of a text is its own root: nothing else joined it yet
        return first

    def _join_band(self, keys: np.ndarray, items: np.ndarray, parent: array) -> int:
        """Join the verified pairs among items that share this band's key; returns pairs compared.

        In rounds, all buckets at once: each bucket's first waiting member is its representative,
        every other waiting member is compared with it (exact Jaccard of the shingle sets, in numpy),
        and those that reach the threshold join its cluster and stop waiting. A bucket's members
        meet at most ``REPRESENTATIVES`` representatives in a band.
        """
        if len(keys) < 2:
            return 0
        order = np.argsort(keys, kind="stable")  # items ascend, so each bucket's members do too
        sorted_keys = keys[order]
        bucket = np.cumsum(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))) - 1
        shared = np.bincount(bucket)[bucket] > 1
        members, bucket = items[order[shared]], bucket[shared]
        flat, ends = self._arrays
        stop = ends[members]
        start = np.where(members > 0, ends[np.maximum(members - 1, 0)], 0)
        lengths = stop - start
        waiting = np.ones(len(members), dtype=bool)
        compared = 0
        for _ in range(REPRESENTATIVES):
            idx = np.flatnonzero(waiting)
            if len(idx) < 2:
                break
            b = bucket[idx]
            first = np.concatenate(([True], b[1:] != b[:-1]))
            group = np.cumsum(first) - 1
            several = np.bincount(group)[group] > 1  # buckets with two or more members still waiting
            idx, first = idx[several], first[several]
            if not len(idx):
                break
            group = np.cumsum(first) - 1
            reps, others, of = idx[first], idx[~first], group[~first]
            rep_keys = (np.repeat(np.arange(len(reps), dtype=np.uint64), lengths[reps]) << np.uint64(32)) | \
                _gather(flat, start[reps], lengths[reps])
            for lo in range(0, len(others), PAIRS_AT_ONCE):
                mine, theirs = others[lo:lo + PAIRS_AT_ONCE], reps[of[lo:lo + PAIRS_AT_ONCE]]
                size = lengths[mine]
                element_keys = (np.repeat(of[lo:lo + PAIRS_AT_ONCE].astype(np.uint64), size) << np.uint64(32)) | \
                    _gather(flat, start[mine], size)
                at = np.minimum(np.searchsorted(rep_keys, element_keys), len(rep_keys) - 1)
                hit = rep_keys[at] == element_keys
                inter = np.bincount(np.repeat(np.arange(len(mine)), size)[hit], minlength=len(mine))
                match = inter >= self.threshold * (size + lengths[theirs] - inter) - 1e-9
                for a, c in zip(members[theirs[match]].tolist(), members[mine[match]].tolist()):
                    ra, rc = _find(parent, a), _find(parent, c)
                    if ra != rc:
                        parent[max(ra, rc)] = min(ra, rc)  # the lower number stays the root
                waiting[mine[match]] = False
            compared += len(others)
            waiting[reps] = False
        return compared


def _gather(flat: np.ndarray, start: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The shingle hashes of several items, one after the other, as uint64."""
    offsets = np.cumsum(lengths) - lengths
    return flat[np.repeat(start - offsets, lengths) + np.arange(int(lengths.sum()))].astype(np.uint64)


def _find(parent: array, i: int) -> int:
    """The root of ``i``, halving the path on the way."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i
