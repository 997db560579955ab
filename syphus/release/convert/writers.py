"""Writers: the files a conversion leaves: the image file (``XX.json`` and/or ``XX.parquet``) and
the list of skipped inputs (``<out>.skipped.txt``, one ``path<TAB>why`` a line).

Both image files are assembled from the parts file sorted by id, streamed: one image in memory
at a time (plus one Parquet row group). JSON is ``{"<image id>": "<base64>", ...}``; Parquet has
the columns ``id`` and ``base64``. Each appears atomically when complete.
"""

from __future__ import annotations

from pathlib import Path

from syphus.release import parquet as parquet_file
from syphus.release.convert.parts import Parts
from syphus.release.jsonstream import ObjectWriter

ROW_GROUP_ROWS = 512
ROW_GROUP_BYTES = 32 << 20  # of base64 text


def assemble(parts: Parts, out: Path | None, parquet: Path | None, row_group_rows: int = ROW_GROUP_ROWS,
             row_group_bytes: int = ROW_GROUP_BYTES) -> int:
    """Write the image file(s) from ``parts``; returns the number of images written."""
    writer = ObjectWriter(out, None) if out is not None else None
    table = None
    if parquet is not None:
        pa, _ = parquet_file.modules("--parquet")
        schema = pa.schema([("id", pa.string()), ("base64", pa.string())])
        table = parquet_file.RowGroupWriter(parquet, schema, rows=row_group_rows, max_bytes=row_group_bytes)
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
