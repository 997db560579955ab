"""Frames: which of a query's images to send, and each one as an OpenAI chat image part.

``spread`` picks n evenly spaced ids (in order, first and last kept); ``image_part`` wraps an
image's bytes as ``{"type": "image_url", "image_url": {"url": "data:image/png;base64,...",
"detail": ...}}`` with the MIME type its magic bytes call for; ``resize`` shrinks an image whose
longer side passes ``max_side`` (OpenCV, the optional extra ``images``). A frame that is no
image fails its one query (``ItemError``), not the run. ``body_json`` encodes a request's messages with
each ``DataUrl`` (an image this package made ready) spliced in, not scanned again.

>>> spread([f"f{i}" for i in range(10)], 4)
['f0', 'f3', 'f6', 'f9']
>>> part = image_part(b"GIF89a\\x01\\x00\\x01\\x00", "low")
>>> part["image_url"]["url"][:30], part["image_url"]["detail"]
('data:image/gif;base64,R0lGODlh', 'low')
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from syphus.errors import ItemError, UserError
from syphus.image import image_size, sniff_extension

T = TypeVar("T")
DETAILS = ("low", "high", "auto")
MIME = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "bmp": "image/bmp"}
INSTALL = "pip install '.[images]' (opencv-python-headless)"
# what cv2.imencode writes for each input format (it writes no GIF animation; BMP is not sent to OpenAI)
_ENCODE_AS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "gif": ".png", "bmp": ".png"}


def spread(ids: Sequence[T], n: int) -> list[T]:
    """``n`` evenly spaced items of ``ids``, in order; the first and last when n >= 2, the middle
    one when n == 1, all of them when n >= len(ids). Deterministic: integer arithmetic, halves up.

    >>> spread("abcdefg", 3), spread("abcdefg", 1), spread("ab", 5), spread("abc", 0)
    (['a', 'd', 'g'], ['d'], ['a', 'b'], [])
    """
    count = len(ids)
    if n <= 0 or count == 0:
        return []
    if n >= count:
        return list(ids)
    if n == 1:
        return [ids[(count - 1) // 2]]
    # round(i * (count - 1) / (n - 1)), halves up; the step is >= 1, so no index repeats
    return [ids[(2 * i * (count - 1) + n - 1) // (2 * (n - 1))] for i in range(n)]


def mime_type(data: bytes) -> str:
    """The MIME type of an image's bytes (PNG, JPEG, GIF, WebP, BMP), from their magic; ItemError otherwise."""
    ext = sniff_extension(data)
    if ext is None:
        head = bytes(data[:8])
        raise ItemError(f"a frame is no PNG, JPEG, GIF, WebP or BMP image (its first bytes are {head!r})",
                        kind="bad_image")
    return MIME[ext]


def image_part(data: bytes, detail: str = "auto") -> dict[str, Any]:
    """An OpenAI chat content part carrying the image ``data`` inline as a data URL, at ``detail``
    (low, high or auto). OpenAI takes PNG, JPEG, WebP and non-animated GIF; BMP is for local servers."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}, not {detail!r}")
    url = f"data:{mime_type(data)};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


class DataUrl(str):
    """A data URL made here (a plain MIME type, then base64): nothing in it needs JSON escaping, so
    ``body_json`` splices it into a request body as it is instead of scanning it again."""

    __slots__ = ()


_MARK = f"syphus-image-{uuid.uuid4().hex}"  # stands in for an image while the rest is encoded; no text holds it


def body_json(messages: list[dict[str, Any]], head: bytes = b"", tail: bytes = b"") -> bytes:
    """``head`` + the JSON of ``messages`` (UTF-8, no NaN) + ``tail``, with each ``DataUrl`` spliced in
    as it is: the text around the images is encoded, the images are only copied into the body once.
    Raises what ``json.dumps`` raises for messages that are not JSON.

    >>> body_json([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": DataUrl("data:a")}}]}])
    b'[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:a"}}]}]'
    """
    urls: list[str] = []
    swapped = [_swapped(m, urls) for m in messages]
    text = json.dumps(swapped if urls else messages, ensure_ascii=False, allow_nan=False)
    pieces = text.split(f'"{_MARK}"') if urls else [text]
    if len(pieces) != len(urls) + 1:  # the mark in a message's own text: encoded the plain way
        urls, pieces = [], [json.dumps(messages, ensure_ascii=False, allow_nan=False)]
    chunks = [head]
    for piece, url in zip(pieces, urls):
        chunks += [piece.encode("utf-8"), b'"', url.encode("ascii"), b'"']
    chunks += [pieces[-1].encode("utf-8"), tail]
    return b"".join(chunks)


def _swapped(message: Any, urls: list[str]) -> Any:
    """``message`` with each ``DataUrl`` of its parts replaced by the mark (appended to ``urls``); shallow copies."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return message
    parts = []
    for part in content:
        image = part.get("image_url") if isinstance(part, dict) else None
        if isinstance(image, dict) and type(image.get("url")) is DataUrl:
            urls.append(image["url"])
            part = {**part, "image_url": {**image, "url": _MARK}}
        parts.append(part)
    return {**message, "content": parts}


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserError(f"resizing frames needs OpenCV: {INSTALL}") from None
    return cv2


def resize(data: bytes, max_side: int) -> bytes:
    """``data`` shrunk so its longer side is ``max_side`` (aspect kept, area interpolation), in the
    same format (GIF and BMP become PNG); returned as it is when it already fits.

    >>> resize(b"GIF89a\\x01\\x00\\x01\\x00" + bytes(8), 512)[:6]   # fits: not decoded, OpenCV not needed
    b'GIF89a'
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    size = image_size(data)
    if size is not None and max(size) <= max_side:
        return data
    ext = sniff_extension(data)
    mime_type(data)  # no image: ItemError before OpenCV is needed
    cv = _cv2()
    import numpy as np
    img = cv.imdecode(np.frombuffer(data, np.uint8), cv.IMREAD_UNCHANGED)
    if img is None:
        raise ItemError(f"a frame ({MIME[ext]}, {len(data)} bytes) could not be decoded", kind="bad_image")
    h, w = img.shape[:2]
    if max(w, h) <= max_side:
        return data
    scale = max_side / max(w, h)
    small = cv.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv.INTER_AREA)
    ok, out = cv.imencode(_ENCODE_AS[ext], small)
    if not ok:
        raise ItemError(f"a frame could not be encoded as {_ENCODE_AS[ext]} after resizing", kind="bad_image")
    return out.tobytes()
