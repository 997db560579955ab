"""The run's read of the query inputs: blank items left out, ids made unique as ``--on_duplicate`` says
(``suffix``: id#2, id#3; ``skip``: the first kept; ``merge``: one query of all the items of an id,
held on disk until its last one has come), from what the check before the run found
(``syphus.inputs.InputCheck``).
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from syphus.dataset import AbstractDataset
from syphus.errors import SyphusError, UserError
from syphus.idset import IdCounts, IdSet
from syphus.seen import SeenIds

if TYPE_CHECKING:
    from syphus.inputs import InputCheck


def run_stream(dataset: AbstractDataset, check: InputCheck, source: str) -> Iterator[dict[str, Any]]:
    """The query inputs to send, read again: checked, blank ones left out, repeats as ``check.policy`` says.

    Ids are unique in what comes out; a repeat here means the plugin gave other items than at the
    check (plugins must be deterministic), a UserError. Nothing is read before the first item is asked for.
    """
    items = _non_blank(dataset.iter_query_inputs(source, unique=False))
    if check.duplicates:
        items = _POLICIES[check.policy](items, check, dataset, source)
    yield from _once(items, source)


def _non_blank(items: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        text = item["sentences"]
        if text and not text.isspace():
            yield item


def _once(items: Iterator[dict[str, Any]], source: str) -> Iterator[dict[str, Any]]:
    seen = SeenIds()
    try:
        for item in items:
            if not seen.add(item["id"]):
                raise UserError(f"{source}: id {item['id']!r} came twice when the inputs were read for the run, "
                                "though the check before the run found no such repeat: the plugin gave other items "
                                "the second time. Plugins must give the same items on every read (see AbstractDataset)")
            yield item
    finally:
        seen.close()


def _suffixed(items, check: InputCheck, dataset, source) -> Iterator[dict[str, Any]]:
    """``--on_duplicate suffix``: the k-th occurrence of a repeated id is ``id#k`` (passing over taken names)."""
    counts, taken = check.repeats.counts, check.repeats.taken
    last = IdCounts()  # repeated id -> the k of its latest name (1: the id itself)
    for item in items:
        qid = item["id"]
        if qid in counts:
            k = last.get(qid)
            if k:
                k += 1
                while f"{qid}#{k}" in taken:
                    k += 1
                item["id"] = f"{qid}#{k}"
            last.set(qid, k or 1)
        yield item


def _first_only(items, check: InputCheck, dataset, source) -> Iterator[dict[str, Any]]:
    """``--on_duplicate skip``: the first item of each id."""
    counts, kept = check.repeats.counts, IdSet()
    for item in items:
        qid = item["id"]
        if qid in counts and not kept.add(qid):
            continue
        yield item


def _merged(items, check: InputCheck, dataset: AbstractDataset, source: str) -> Iterator[dict[str, Any]]:
    """``--on_duplicate merge``: one item per repeated id, from ``merge_items``, where the id occurs last."""
    left = check.repeats.counts.copy()  # repeated id -> occurrences still to come
    held = HeldItems()
    try:
        for item in items:
            qid = item["id"]
            n = left.get(qid)
            if not n:
                yield item
                continue
            held.add(qid, item)
            left.set(qid, n - 1)
            if n == 1:
                yield merge_one(dataset, held.take(qid), qid, source)
        if len(held):
            raise UserError(f"{source}: {len(held)} item(s) of repeated ids were still waiting for the rest of their "
                            "id at the end of the inputs: the plugin gave other items than at the check before the "
                            "run. Plugins must give the same items on every read (see AbstractDataset)")
    finally:
        held.close()


_POLICIES = {"suffix": _suffixed, "skip": _first_only, "merge": _merged}


def merge_one(dataset: AbstractDataset, items: list[dict[str, Any]], qid: str, source: str) -> dict[str, Any]:
    """``dataset.merge_items(items)``, checked: a dict with id ``qid`` and string sentences."""
    try:
        merged = dataset.merge_items(items)
    except SyphusError:
        raise
    except Exception as e:
        raise UserError(f"{source}: merge_items failed for id {qid!r} ({len(items)} items): "
                        f"{type(e).__name__}: {e}") from e
    if not isinstance(merged, dict) or not isinstance(merged.get("sentences"), str):
        got = "a dict without string 'sentences'" if isinstance(merged, dict) else f"a {type(merged).__name__}"
        raise UserError(f"{source}: merge_items for id {qid!r} returned {got}; return one item "
                        "{'id': ..., 'sentences': str, ...}")
    if merged.get("id") != qid:
        merged = {**merged, "id": qid}
    return merged


class HeldItems:
    """Items waiting for the rest of their id (``--on_duplicate merge``): in memory up to ``limit``, then on disk.

    The disk part is a private SQLite file (deleted when closed), items pickled; ``take(id)``
    returns an id's items in the order they were added.
    """

    limit = 10_000

    def __init__(self, limit: int | None = None):
        self.limit = self.limit if limit is None else limit
        self._memory: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._in_memory = 0
        self._on_disk = 0
        self._order = 0
        self._db: sqlite3.Connection | None = None

    def __len__(self) -> int:
        return self._in_memory + self._on_disk

    def add(self, qid: str, item: dict[str, Any]) -> None:
        self._order += 1
        if self._in_memory < self.limit:
            self._memory.setdefault(qid, []).append((self._order, item))
            self._in_memory += 1
            return
        try:
            data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            raise UserError(f"id {qid!r}: an item to merge could not be set aside on disk ({type(e).__name__}: {e}); "
                            "keep items to plain values (str, numbers, lists, dicts)") from e
        self._disk().execute("INSERT INTO held VALUES (?, ?, ?)", (qid, self._order, data))
        self._on_disk += 1

    def take(self, qid: str) -> list[dict[str, Any]]:
        """Every item held for ``qid``, in order; they are no longer held."""
        found = self._memory.pop(qid, [])
        self._in_memory -= len(found)
        if self._on_disk:
            db = self._disk()
            rows = db.execute("SELECT n, item FROM held WHERE id = ?", (qid,)).fetchall()
            if rows:
                db.execute("DELETE FROM held WHERE id = ?", (qid,))
                self._on_disk -= len(rows)
                found += [(n, pickle.loads(data)) for n, data in rows]
        return [item for _, item in sorted(found, key=lambda x: x[0])]

    def _disk(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect("")  # "": a private temporary file, deleted on close
            self._db.execute("CREATE TABLE held (id TEXT, n INTEGER, item BLOB)")
            self._db.execute("CREATE INDEX held_id ON held (id)")
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
