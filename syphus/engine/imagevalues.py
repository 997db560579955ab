"""Image values: an indexed image's bytes read from the image file, given where the index says it is.

A JSON image file's value is read at its byte offset and length (``JsonValues``; a plain base64
string is taken as it is, with no JSON parse, when the request can send it as stored); a Parquet
file's value is a cell of its image column, read one row group at a time with the last few groups
kept in an LRU bounded in count and bytes (``ParquetValues``). A value that is no image is
``BadImage``, an ``ItemError`` naming the file and the id.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syphus.engine import parquet
from syphus.errors import ItemError, UserError
from syphus.image import clean_base64, image_bytes, stored_base64


class BadImage(ItemError):
    """An id whose value in the image file is no image (bad base64, null, ...), or that is repeated."""

    def __init__(self, message: str):
        super().__init__(message, kind="bad_image")


def _decoded(path: Path, image_id: str, value: Any, stored: bool = False) -> bytes | str:
    if stored and (text := stored_base64(value)) is not None:
        return text
    try:
        return image_bytes(value)
    except ValueError as e:
        raise BadImage(f"{path}: the image {image_id!r} cannot be decoded: {e}; convert the image again "
                       "(syphus convert) or drop the id") from None


ReadGroup = Callable[[Any, int, list[str]], Any]  # (ParquetFile, row group, columns) -> pyarrow.Table


def read_row_group(pf, group: int, columns: list[str]):
    """The default ``read_group``: the columns ``columns`` of row group ``group``, nothing else.

    One thread: pyarrow's threaded read holds about twice the column while it decodes.
    """
    return pf.read_row_group(group, columns=columns, use_threads=False)


def _plain_base64(raw: bytes) -> str | None:
    """A JSON string that is clean base64 (so it has no escapes to undo) read as it is, with no parse; else None."""
    if len(raw) >= 2 and raw[0] == raw[-1] == 0x22:
        return clean_base64(raw[1:-1])
    return None


class JsonValues:
    """Values of a JSON image file, read by (offset, length)."""

    def __init__(self, path: Path):
        self.path = path
        self.f = path.open("rb")

    def fetch(self, image_id: str, offset: int, length: int, stored: bool = False) -> bytes | str | None:
        self.f.seek(offset)
        raw = self.f.read(length)
        if len(raw) != length:
            raise UserError(f"{self.path}: the image {image_id!r} is not where the index says (byte {offset}); "
                            "the file changed while open: open it again")
        if stored and (text := _plain_base64(raw)) is not None:
            return text
        try:
            value = json.loads(raw)
        except ValueError as e:
            raise UserError(f"{self.path}: the image {image_id!r} at byte {offset} is not valid JSON ({e}); the file "
                            "is damaged, or changed while open") from None
        return _decoded(self.path, image_id, value, stored)

    def close(self) -> None:
        self.f.close()


class ParquetValues:
    """Values of a Parquet image file, read a row group's image column at a time, the last few kept."""

    def __init__(self, path: Path, pf, column: str, read_group: ReadGroup, max_groups: int, max_bytes: int):
        self.path, self.pf, self.column, self.read_group = path, pf, column, read_group
        self.max_groups, self.max_bytes = max(1, max_groups), max_bytes
        self.cache: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self.cached_bytes = 0
        self.groups_read = 0

    def _group(self, group: int):
        hit = self.cache.get(group)
        if hit is not None:
            self.cache.move_to_end(group)
            return hit[0]
        table = self.read_group(self.pf, group, [self.column])
        self.groups_read += 1
        self.cache[group] = (table.column(0), table.nbytes)
        self.cached_bytes += table.nbytes
        while len(self.cache) > 1 and (len(self.cache) > self.max_groups or self.cached_bytes > self.max_bytes):
            _, (_, nbytes) = self.cache.popitem(last=False)
            self.cached_bytes -= nbytes
        return self.cache[group][0]

    def fetch(self, image_id: str, group: int, row: int, stored: bool = False) -> bytes | str | None:
        values = self._group(group)
        if row >= len(values):
            raise UserError(f"{self.path}: the image {image_id!r} is not where the index says; "
                            "the file changed while open: open it again")
        return _decoded(self.path, image_id, values[row].as_py(), stored)

    def close(self) -> None:
        self.cache.clear()
        self.cached_bytes = 0


def parquet_file(path: Path):
    pa, pq = parquet.modules(f"{path}: reading a Parquet image file")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable Parquet file ({e}); the file may be cut short or damaged") from None


def guarded(path: Path, read_group: ReadGroup) -> ReadGroup:
    """``read_group`` with pyarrow's errors turned into a UserError naming the file and the row group."""
    pa, _ = parquet.modules(f"{path}: reading a Parquet image file")

    def read(pf, group: int, columns: list[str]):
        try:
            return read_group(pf, group, columns)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise UserError(f"{path}: row group {group} cannot be read ({e}); the file is damaged") from None
    return read
