"""Parquet: the one reader and the one row-group writer of the release's Parquet files.

An image file ``XX.parquet`` has an id column (``id``; ``image_id`` or a pandas index in other
people's files) and an image column (``base64``; ``image``, ``bytes`` or ``data``). ``ids`` and
``items`` stream it a batch at a time; ``RowGroupWriter`` writes a table a row group at a time,
so neither side holds a whole file. pyarrow is imported only when a file is read or written.

>>> import pathlib, tempfile
>>> pa, _ = modules("this example")
>>> path = pathlib.Path(tempfile.mkdtemp()) / "VST.parquet"
>>> w = RowGroupWriter(path, pa.schema([("id", pa.string()), ("base64", pa.string())]), rows=2)
>>> for n in range(3): w.add(f"VST_IMG_{n}", "aGk=")
>>> w.close()
>>> list(ids(path)), next(items(path))
(['VST_IMG_0', 'VST_IMG_1', 'VST_IMG_2'], ('VST_IMG_0', 'aGk='))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syphus.errors import UserError

INSTALL = "pip install 'syphus[parquet]'"
HINT = f"{INSTALL} (pyarrow)"
ID_COLUMNS = ("id", "image_id", "__index_level_0__")
IMAGE_COLUMNS = ("base64", "image", "bytes", "data")


def available() -> bool:
    """Whether pyarrow can be imported (for callers that skip Parquet output without it)."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def modules(needed_for: str):
    """(pyarrow, pyarrow.parquet); without pyarrow a UserError saying ``<needed_for> needs pyarrow`` and the fix."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{needed_for} needs pyarrow: {INSTALL}") from None
    return pa, pq


def _open(path: Path):
    _, pq = modules(f"{path}: reading Parquet")
    return pq.ParquetFile(path)


def _image_column(path: Path, names: list[str]) -> str:
    column = next((c for c in IMAGE_COLUMNS if c in names), None)
    if column is None:
        raise UserError(f"{path}: no image column (looked for {', '.join(map(repr, IMAGE_COLUMNS))}); "
                        f"columns are {names}")
    return column


def _id_column(path: Path, names: list[str]) -> str:
    column = next((c for c in ID_COLUMNS if c in names), None)
    if column is None:
        others = [c for c in names if c not in IMAGE_COLUMNS]
        if not others:
            raise UserError(f"{path}: no id column (looked for 'id', 'image_id' or a pandas index); "
                            f"columns are {names}")
        column = others[0]
    return column


def ids(path: str | Path, batch_size: int = 65536) -> Iterator[str]:
    """Every image id of a Parquet image file, in file order; only the id column is read."""
    path = Path(path)
    pf = _open(path)
    column = _id_column(path, pf.schema_arrow.names)
    for batch in pf.iter_batches(columns=[column], batch_size=batch_size):
        for value in batch.column(0).to_pylist():
            yield str(value)


def items(path: str | Path, batch_size: int = 64) -> Iterator[tuple[str, Any]]:
    """``(image id, image value)`` for each row of a Parquet image file, ``batch_size`` rows in memory."""
    path = Path(path)
    pf = _open(path)
    names = pf.schema_arrow.names
    image = _image_column(path, names)
    for batch in pf.iter_batches(columns=[_id_column(path, names), image], batch_size=batch_size):
        keys, values = batch.column(0).to_pylist(), batch.column(1)
        for i, key in enumerate(keys):
            yield str(key), values[i].as_py()


class RowGroupWriter:
    """A Parquet table written a row group at a time: rows gather until ``rows`` of them (or
    ``max_bytes``, as the callers weigh them with ``add(..., nbytes=)``) and go out as one group.

    The table goes to ``<path>.tmp`` and replaces ``path`` on ``close``; a table with no rows
    still gets one (empty) row group, which every Parquet reader accepts.
    """

    def __init__(self, path: Path, schema, rows: int, max_bytes: int | None = None):
        pa, pq = modules("writing Parquet")
        self._pa, self.schema = pa, schema
        self.path, self.tmp = Path(path), Path(path).with_name(Path(path).name + ".tmp")
        self.rows, self.max_bytes = rows, max_bytes
        self._writer = pq.ParquetWriter(str(self.tmp), schema)
        self._columns: list[list[Any]] = [[] for _ in schema.names]
        self._bytes = 0
        self.groups = 0

    def add(self, *values: Any, nbytes: int = 0) -> None:
        """One row, its values in the schema's column order."""
        for column, value in zip(self._columns, values, strict=True):
            column.append(value)
        self._bytes += nbytes
        if len(self._columns[0]) >= self.rows or (self.max_bytes is not None and self._bytes >= self.max_bytes):
            self._flush()

    def _flush(self) -> None:
        table = self._pa.Table.from_pydict(dict(zip(self.schema.names, self._columns)), schema=self.schema)
        self._writer.write_table(table)
        self.groups += 1
        for column in self._columns:
            column.clear()
        self._bytes = 0

    def close(self) -> None:
        if self._columns[0] or not self.groups:
            self._flush()
        self._writer.close()
        os.replace(self.tmp, self.path)
