"""Parts: the folder ``<out>.parts/`` that makes a conversion resumable.

Workers append each finished image to ``parts.jsonl`` as one line ``{"id", "base64"}``;
``settings.json`` stamps the flags the parts were made with. A rerun with the same flags
``resume``s: ids already in the file are done (a torn last line is cut off). The outputs are
assembled from ``sorted_index``, an external merge sort, so at most SORT_CHUNK ids are in memory.

>>> import pathlib, tempfile
>>> parts = Parts(pathlib.Path(tempfile.mkdtemp()) / "VST.json")
>>> _ = parts.file.write_text('{"id": "VST_IMG_2", "base64": "x"}\\n{"id": "VST_IMG_1", "base64": "y"}\\n{"id": "VST_')
>>> done = parts.resume({"scene": "VST"})
>>> len(done), "VST_IMG_1" in done, list(parts.sorted_index())
(2, True, [('VST_IMG_1', 35), ('VST_IMG_2', 0)])
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syphus.errors import UserError
from syphus.idset import IdSet

SORT_CHUNK = 100_000  # (id, offset) pairs sorted in memory at a time while assembling


class Parts:
    """The parts folder next to ``base`` (the first output): ``folder``, ``file`` (parts.jsonl), ``stamp``."""

    def __init__(self, base: Path):
        self.folder = base.with_name(base.name + ".parts")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.file = self.folder / "parts.jsonl"
        self.stamp = self.folder / "settings.json"

    def resume(self, stamp: dict[str, Any]) -> IdSet:
        """The ids already done by an earlier run with the same ``stamp`` (none for a fresh folder).

        A folder stamped with other settings is refused: its images would not match.
        """
        if self.stamp.exists():
            try:
                previous = json.loads(self.stamp.read_text(encoding="utf-8"))
            except ValueError:
                previous = None
            if previous is not None and previous != stamp:
                raise UserError(f"{self.folder}: an interrupted conversion with other settings ({previous}) is there; "
                                f"rerun it with the same flags, or delete that folder to start over")
        else:
            self.stamp.write_text(json.dumps(stamp) + "\n", encoding="utf-8")
        return self._done()

    def _done(self) -> IdSet:
        """Ids in the parts file; a torn last line is cut off so appends start on a fresh line."""
        done = IdSet()
        if not self.file.exists():
            return done
        good = 0
        with self.file.open("rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                good += len(line)
                try:
                    done.add(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    pass  # a damaged line: its image is redone
        if good != self.file.stat().st_size:
            os.truncate(self.file, good)
        return done

    def ids(self, prefix: str = "") -> Iterator[str]:
        """The ids in the parts file that start with ``prefix``, in file order."""
        with self.file.open("rb") as f:
            for line in f:
                try:
                    image_id = json.loads(line)["id"]
                except (ValueError, KeyError, TypeError):
                    continue
                if image_id.startswith(prefix):
                    yield image_id

    def sorted_index(self, chunk: int | None = None) -> Iterator[tuple[str, int]]:
        """(id, offset) of every complete line, sorted by id: at most ``chunk`` pairs in memory."""
        chunk = chunk or SORT_CHUNK
        runs: list = []
        buf: list[tuple[str, int]] = []

        def spill() -> None:
            buf.sort()
            f = tempfile.TemporaryFile("w+", encoding="utf-8", dir=self.folder)
            for item in buf:
                f.write(json.dumps(item) + "\n")
            f.seek(0)
            runs.append(f)
            buf.clear()

        with self.file.open("rb") as f:
            offset = 0
            for line in f:
                if line.endswith(b"\n"):
                    try:
                        buf.append((json.loads(line)["id"], offset))
                    except (ValueError, KeyError, TypeError):
                        pass
                    if len(buf) >= chunk:
                        spill()
                offset += len(line)
        if not runs:
            buf.sort()
            yield from buf
            return
        if buf:
            spill()
        try:
            yield from heapq.merge(*(((i, o) for i, o in map(json.loads, run)) for run in runs))
        finally:
            for run in runs:
                run.close()

    def images(self) -> Iterator[tuple[str, str]]:
        """(id, base64) of every image, sorted by id, each id once; one image in memory at a time."""
        last = None
        with self.file.open("rb") as f:
            for image_id, offset in self.sorted_index():
                if image_id == last:
                    continue
                last = image_id
                f.seek(offset)
                yield image_id, json.loads(f.readline())["base64"]

    def remove(self) -> None:
        shutil.rmtree(self.folder)
