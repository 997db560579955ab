"""Images: the ids held by a release image file (``XX.json`` ``{id: base64}`` or ``XX.parquet``).

Only ids are read; base64 payloads pass through one at a time.

>>> for image_id in image_ids("DC.json"):   # doctest: +SKIP
...     print(image_id)

Imports: syphus.errors, syphus.release.jsonstream.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from syphus.errors import UserError
from syphus.release.jsonstream import iter_members

PARQUET_HINT = "pip install 'syphus[parquet]' (pyarrow)"


def _parquet_ids(path: Path) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{path}: reading Parquet needs pyarrow: {PARQUET_HINT}") from None
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    column = next((c for c in ("id", "image_id", "__index_level_0__") if c in names), None)
    if column is None:
        index_cols = [c for c in names if c != "base64"]
        if not index_cols:
            raise UserError(f"{path}: no id column (looked for 'id', 'image_id' or a pandas index); "
                            f"columns are {names}")
        column = index_cols[0]
    for batch in pf.iter_batches(columns=[column], batch_size=65536):
        for value in batch.column(0).to_pylist():
            yield str(value)


def image_ids(path: str | Path) -> Iterator[str]:
    """Every image id in a release image file, streamed."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: image file not found")
    if p.suffix == ".parquet":
        yield from _parquet_ids(p)
        return
    for key, _ in iter_members(p):
        yield key
