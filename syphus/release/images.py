"""Images: what a release image file (``XX.json`` ``{id: base64}`` or ``XX.parquet``) holds.

``image_ids`` reads only the ids; ``image_items`` yields (id, encoded image) one at a time.
Either way base64 payloads pass through one at a time (``syphus.image.image_bytes`` decodes one).

One image per id: a file that holds an id twice is refused by the image index (``ImageIndex.open``)
and reported by ``validate``; no reader picks one of the copies.

>>> for image_id in image_ids("DC.json"):   # doctest: +SKIP
...     print(image_id)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syphus.errors import UserError
from syphus.engine import parquet
from syphus.release.jsonstream import iter_members


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: image file not found")
    return p


def image_ids(path: str | Path) -> Iterator[str]:
    """Every image id in a release image file, streamed."""
    p = _existing(path)
    if p.suffix == ".parquet":
        yield from parquet.ids(p)
        return
    for key, _ in iter_members(p):
        yield key


def image_items(path: str | Path) -> Iterator[tuple[str, Any]]:
    """``(image id, encoded image)`` for each image of a release image file, streamed."""
    p = _existing(path)
    if p.suffix == ".parquet":
        yield from parquet.items(p)
    else:
        yield from iter_members(p)
