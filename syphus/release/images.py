"""Images: what a release image file (``XX.json`` ``{id: base64}`` or ``XX.parquet``) holds.

``image_ids`` reads only the ids; ``image_items`` yields (id, encoded image) one at a time.
Either way base64 payloads pass through one at a time. ``image_bytes`` decodes one value strictly:
a value that is no image (bad base64, null, a number, empty) raises ``ValueError`` saying why, so
callers report it by id instead of taking it for an image the file lacks.

One image per id: a file that holds an id twice is refused by the image index (``ImageIndex.open``)
and reported by ``validate``; no reader picks one of the copies.

>>> for image_id in image_ids("DC.json"):   # doctest: +SKIP
...     print(image_id)
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syphus.errors import UserError
from syphus.release import parquet
from syphus.release.jsonstream import iter_members


_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,")
_SPACE = re.compile(r"\s+")


def image_bytes(value: Any) -> bytes:
    """The bytes of one image value (base64 text, a data URL, raw bytes, ``{"bytes"|"base64": ...}``).

    Raises ``ValueError`` naming what is wrong when the value is no image. Valid values decode
    exactly as ``syphus.release.view.decode_image`` decodes them.
    """
    from syphus.release.view import sniff_extension  # view reads image files through this module
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("base64")
    if isinstance(value, (bytes, bytearray)):
        if sniff_extension(bytes(value)):
            return bytes(value)
        value = bytes(value).decode("ascii", "replace")
    if not isinstance(value, str):
        raise ValueError(f"a JSON {type(value).__name__ if value is not None else 'null'}, not base64 text")
    text = _SPACE.sub("", _DATA_URI.sub("", value.strip(), count=1))
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"not valid base64 ({e})") from None
    if not data:
        raise ValueError("empty")
    return data


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
