"""Writers: the files a conversion leaves: the image file (``XX.json`` and/or ``XX.parquet``) and
the list of skipped inputs (``<out>.skipped.txt``, one ``path<TAB>why`` a line).

Both image files are assembled from the parts file sorted by id, streamed: one image in memory
at a time (plus one Parquet row group). JSON is ``{"<image id>": "<base64>", ...}``; Parquet has
the columns ``id`` and ``base64``, ``id`` being the table's pandas index (what the MIMIC-IT trainer
needs: ``pandas.read_parquet(path).loc[image_id]["base64"]``). Each appears atomically when complete.
``rewrite`` gives an existing image file (JSON, or Parquet of an older shape) that shape without
decoding or encoding any image.
"""

from __future__ import annotations

import base64
from pathlib import Path

from syphus.errors import UserError
from syphus.engine import parquet as parquet_file
from syphus.release.convert.parts import Parts
from syphus.release.images import image_items
from syphus.release.jsonstream import ObjectWriter

ROW_GROUP_ROWS = 512
ROW_GROUP_BYTES = 32 << 20  # of base64 text


def assemble(parts: Parts, out: Path | None, parquet: Path | None, row_group_rows: int = ROW_GROUP_ROWS,
             row_group_bytes: int = ROW_GROUP_BYTES) -> int:
    """Write the image file(s) from ``parts``; returns the number of images written."""
    writer = ObjectWriter(out, None) if out is not None else None
    table = None
    if parquet is not None:
        table = _image_table(parquet, row_group_rows, row_group_bytes)
    n = 0
    for image_id, b64 in parts.images():
        n += 1
        if writer is not None:
            writer.add(image_id, b64)
        if table is not None:
            table.add(image_id, b64, nbytes=len(b64))
    if table is not None:
        table.close()
    if writer is not None:
        writer.close()
    return n


def _image_table(path: Path, rows: int, max_bytes: int) -> parquet_file.RowGroupWriter:
    pa, _ = parquet_file.modules("--parquet")
    schema = pa.schema([("id", pa.string()), ("base64", pa.string())])
    return parquet_file.RowGroupWriter(path, schema, rows=rows, max_bytes=max_bytes, index="id")


def _as_base64(image_id: str, value) -> str:
    if isinstance(value, (bytes, bytearray)):  # a binary column holds the encoded image itself
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, str):
        return value
    raise UserError(f"image {image_id!r} is a {type(value).__name__}, not base64 text or image bytes")


def rewrite(source: Path, parquet: Path, row_group_rows: int = ROW_GROUP_ROWS,
            row_group_bytes: int = ROW_GROUP_BYTES) -> int:
    """Write the images of ``source`` (XX.json or XX.parquet) to ``parquet`` keyed by id; returns how many.

    Images are copied as they are (binary columns become base64 text), in the source's order,
    one row group in memory; ``parquet`` may be ``source`` itself (it is replaced when complete).

    >>> rewrite(Path("DC.parquet"), Path("DC.parquet"))   # doctest: +SKIP
    """
    if not Path(source).is_file():
        raise UserError(f"{source}: image file not found; pass an XX.json or XX.parquet to --rewrite")
    table = _image_table(parquet, row_group_rows, row_group_bytes)
    n = 0
    try:
        for image_id, value in image_items(source):
            b64 = _as_base64(image_id, value)
            table.add(image_id, b64, nbytes=len(b64))
            n += 1
    except BaseException:
        table.abort()
        raise
    table.close()
    return n


class SkipList:
    """``<base>.skipped.txt``, written as skips happen, so an interrupted run keeps it too."""

    def __init__(self, base: Path):
        self.path = base.with_name(base.name + ".skipped.txt")
        self._f = self.path.open("w", encoding="utf-8")
        self.count = 0

    def add(self, path: str, why: str) -> None:
        self._f.write(f"{path}\t{why}\n")
        self._f.flush()
        self.count += 1

    def close(self) -> None:
        self._f.close()

    def drop_if_empty(self) -> None:
        """Remove the file of a finished run that skipped nothing."""
        if not self.count:
            self.path.unlink(missing_ok=True)
