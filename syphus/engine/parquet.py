"""Parquet: the one reader and the one row-group writer of the release's Parquet files.

The MIMIC-IT trainer reads an image file with ``pandas.read_parquet(path)`` and looks each
image up with ``.loc[image_id]["base64"]``, so the id must be the table's *index*: the ``pandas``
key of the Arrow schema metadata names the id column in ``index_columns``. ``RowGroupWriter(...,
index="id")`` writes that metadata itself (pandas is not needed to write, only to read), for the
image file (columns ``id``, ``base64``) and the instructions table alike, a row group at a time.

``ids`` and ``items`` stream a file a batch at a time and read both that shape and older files
(an ``id``, ``image_id`` or ``__index_level_0__`` column without index metadata, an image column
``base64``, ``image``, ``bytes`` or ``data``); ``index_problem`` says what is wrong with a file
whose ids are not its index. pyarrow is imported only when a file is read or written.

>>> import pathlib, tempfile
>>> pa, pq = modules("this example")
>>> path = pathlib.Path(tempfile.mkdtemp()) / "VST.parquet"
>>> w = RowGroupWriter(path, pa.schema([("id", pa.string()), ("base64", pa.string())]), rows=2, index="id")
>>> for n in range(3): w.add(f"VST_IMG_{n}", "aGk=")
>>> w.close()
>>> list(ids(path)), next(items(path)), index_problem(path)
(['VST_IMG_0', 'VST_IMG_1', 'VST_IMG_2'], ('VST_IMG_0', 'aGk='), None)
>>> pq.read_schema(path).pandas_metadata["index_columns"]
['id']
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syphus import __version__
from syphus.durable import swap_in, tmp_path
from syphus.errors import UserError

INSTALL = "pip install 'syphus[parquet]'"
HINT = f"{INSTALL} (pyarrow)"
ID_COLUMNS = ("id", "image_id", "__index_level_0__")
IMAGE_COLUMNS = ("base64", "image", "bytes", "data")
PANDAS_FORMAT = "2.0.0"  # the layout of the pandas metadata written (pandas 1.x and 2.x write the same)


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


def _id_column(path: Path, schema) -> str:
    """The id column: the index named in the pandas metadata, else a known id column, else the first other one."""
    names = schema.names
    column = index_column(schema) or next((c for c in ID_COLUMNS if c in names), None)
    if column is None:
        others = [c for c in names if c not in IMAGE_COLUMNS]
        if not others:
            raise UserError(f"{path}: no id column (looked for 'id', 'image_id' or a pandas index); "
                            f"columns are {names}")
        column = others[0]
    return column


def index_column(schema) -> str | None:
    """The column the schema's pandas metadata names as the table's index (None: no such column).

    A pandas RangeIndex is stored as a description, not a column, and counts as none.
    """
    try:
        meta = schema.pandas_metadata or {}
    except ValueError:  # metadata that is not JSON
        return None
    named = [c for c in meta.get("index_columns") or [] if isinstance(c, str) and c in schema.names]
    return named[0] if len(named) == 1 else None


def index_problem(path: str | Path) -> str | None:
    """Why ``pandas.read_parquet(path).loc[id]`` cannot find rows by id, or None when it can.

    >>> index_problem("DC.parquet")   # doctest: +SKIP
    "the ids are the plain column 'id', not the table's index: ..."
    """
    path = Path(path)
    schema = _open(path).schema_arrow
    if index_column(schema) is not None:
        return None
    column = _id_column(path, schema)
    return (f"the ids are the plain column {column!r}, not the table's index: pandas.read_parquet(path)"
            f".loc[image_id] (how the MIMIC-IT trainer looks images up) finds no row")


def _pandas_type(pa, arrow_type) -> str:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"list[{_pandas_type(pa, arrow_type.value_type)}]"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "unicode"
    if pa.types.is_integer(arrow_type):
        return str(arrow_type)
    return "object"


def with_index(schema, index: str):
    """``schema`` with the pandas metadata that makes column ``index`` the table's index.

    What ``pandas.DataFrame.set_index(index).to_parquet`` would store, written without pandas:
    string columns as ``unicode``/``object``, lists of strings as ``list[unicode]``.
    """
    pa, _ = modules("writing Parquet")
    if index not in schema.names:
        raise ValueError(f"index column {index!r} is not in the schema {schema.names}")
    columns = [{"name": f.name, "field_name": f.name, "pandas_type": _pandas_type(pa, f.type),
                "numpy_type": str(f.type) if pa.types.is_integer(f.type) else "object", "metadata": None}
               for f in schema]
    meta = {"index_columns": [index],
            "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
            "columns": columns, "creator": {"library": "syphus", "version": __version__},
            "pandas_version": PANDAS_FORMAT}
    return schema.with_metadata({**(schema.metadata or {}), b"pandas": json.dumps(meta).encode("utf-8")})


def ids(path: str | Path, batch_size: int = 65536) -> Iterator[str]:
    """Every image id of a Parquet image file, in file order; only the id column is read."""
    path = Path(path)
    pf = _open(path)
    column = _id_column(path, pf.schema_arrow)
    for batch in pf.iter_batches(columns=[column], batch_size=batch_size):
        for value in batch.column(0).to_pylist():
            yield str(value)


def items(path: str | Path, batch_size: int = 64) -> Iterator[tuple[str, Any]]:
    """``(image id, image value)`` for each row of a Parquet image file, ``batch_size`` rows in memory."""
    path = Path(path)
    pf = _open(path)
    image = _image_column(path, pf.schema_arrow.names)
    for batch in pf.iter_batches(columns=[_id_column(path, pf.schema_arrow), image], batch_size=batch_size):
        keys, values = batch.column(0).to_pylist(), batch.column(1)
        for i, key in enumerate(keys):
            yield str(key), values[i].as_py()


class RowGroupWriter:
    """A Parquet table written a row group at a time: rows gather until ``rows`` of them (or
    ``max_bytes``, as the callers weigh them with ``add(..., nbytes=)``) and go out as one group.

    ``index`` names the column that keys the rows (the table's pandas index, see ``with_index``).
    The table goes to ``<path>.tmp`` and replaces ``path`` on ``close``; a table with no rows
    still gets one (empty) row group, which every Parquet reader accepts.
    """

    def __init__(self, path: Path, schema, rows: int, max_bytes: int | None = None, index: str | None = None):
        pa, pq = modules("writing Parquet")
        self._pa, self.schema = pa, with_index(schema, index) if index else schema
        self.path, self.tmp = Path(path), tmp_path(Path(path))
        self.rows, self.max_bytes = rows, max_bytes
        self._writer = pq.ParquetWriter(str(self.tmp), self.schema)
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
        """Write what is left and put the table in place."""
        if self._columns[0] or not self.groups:
            self._flush()
        self._writer.close()
        swap_in(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the unfinished table; ``path`` is left as it was."""
        self._writer.close()
        self.tmp.unlink(missing_ok=True)
