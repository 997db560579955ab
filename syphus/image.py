"""Image: what an image's bytes are, read from their first bytes, and one stored image value decoded.

``sniff_extension`` tells PNG, JPEG, GIF, WebP and BMP by their magic; ``image_size`` reads the
width and height from the header alone (nothing decoded, so a 4K frame costs a few hundred bytes
of reading); ``image_bytes`` decodes one value of a release image file (base64 text, a data URL,
raw bytes, ``{"bytes"|"base64": ...}``) strictly: a value that is no image raises ``ValueError``
saying why, so callers report it by id instead of taking it for an image the file lacks.
``stored_base64`` gives the same value as base64 text without decoding it when it already is
clean base64 (what a request's data URL carries), else None; ``clean_base64`` the same for bytes as
read from a file, in one pass; ``stored_size`` an image's format and size from the first bytes of
its base64.

>>> sniff_extension(b"\\xff\\xd8\\xff\\xe0"), image_size(b"GIF89a\\x10\\x00\\x08\\x00" + bytes(20))
('jpg', (16, 8))
>>> image_bytes("data:image/gif;base64,R0lGODlh"), stored_base64("R0lGODlh"), stored_base64("R0lG ODlh")
(b'GIF89a', 'R0lGODlh', None)
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,")
_SPACE = re.compile(r"\s+")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def sniff_extension(data: bytes) -> str | None:
    """The file extension an image's bytes call for, or None if they are no known image.

    >>> [sniff_extension(b) for b in (b"\\x89PNG\\r\\n\\x1a\\n...", b"\\xff\\xd8\\xff\\xe0", b"GIF89a", b"text")]
    ['png', 'jpg', 'gif', None]
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"BM"):
        return "bmp"
    return None


def image_bytes(value: Any) -> bytes:
    """The bytes of one image value (base64 text, a data URL, raw bytes, ``{"bytes"|"base64": ...}``).

    Raises ``ValueError`` naming what is wrong when the value is no image.
    """
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


def stored_base64(value: Any) -> str | None:
    """``value`` as the base64 text a data URL carries, when it already is exactly that (no data URL
    prefix, no white space, a whole number of quads); None when it must be decoded to be sent."""
    if isinstance(value, dict):
        value = value.get("base64") if isinstance(value.get("base64"), str) else None
    if not isinstance(value, str) or not value.isascii():
        return None
    return value if _clean(value.encode("ascii")) else None


def clean_base64(data: bytes) -> str | None:
    """``data`` (bytes as read from a file) as text, when they are clean base64: only the alphabet,
    at most two ``=`` and only at the end, a whole number of quads, not empty; else None.

    One C pass checks it all (``bytes.translate`` deleting the alphabet, ~20x faster than a regex):
    a quote, a backslash, white space or any byte past ASCII is left over and refuses it.

    >>> clean_base64(b"R0lGODlh"), clean_base64(b"aGk="), clean_base64(b"a=k="), clean_base64(b'aGk"')
    ('R0lGODlh', 'aGk=', None, None)
    """
    return data.decode("ascii") if _clean(data) else None


def _clean(data: bytes) -> bool:
    if not data or len(data) % 4:
        return False
    rest = data.translate(None, _ALPHABET)  # what is not the alphabet: only the padding may be
    return not rest or (len(rest) <= 2 and not rest.strip(b"=") and data.endswith(rest))


def head_bytes(text: str, n: int = 4096) -> bytes:
    """The first (about) ``n`` bytes of the image whose base64 is ``text``: enough to sniff and size it."""
    quads = min(len(text), (n + 2) // 3 * 4)
    return base64.b64decode(text[:quads])


def stored_size(text: str) -> tuple[str | None, tuple[int, int] | None]:
    """(extension, size) of the image whose clean base64 is ``text``, from its first bytes alone.

    PNG, GIF, WebP and BMP keep both within their first 30 bytes, so 48 are decoded first; a JPEG
    (whose frame header may follow kilobytes of EXIF) or a header cut short gets the first 4 KiB.
    """
    head = head_bytes(text, 48)
    ext, size = sniff_extension(head), image_size(head)
    if ext == "jpg" or size is None:
        head = head_bytes(text)
        ext, size = sniff_extension(head), image_size(head)
    return ext, size


_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in _SOF:
            if i + 9 > len(data):
                return None
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) \
            if data[12:16] == b"IHDR" and len(data) >= 24 else None
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg_size(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return (int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")) if len(data) >= 10 else None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data.startswith(b"BM") and len(data) >= 26:
        if int.from_bytes(data[14:18], "little") == 12:  # OS/2 header: 16-bit sides
            return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
        return (abs(int.from_bytes(data[18:22], "little", signed=True)),
                abs(int.from_bytes(data[22:26], "little", signed=True)))  # height < 0: stored top-down
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, GIF, WebP or BMP image; None for anything
    else, or a header cut short. Nothing is decoded (a JPEG's EXIF rotation is not applied).

    >>> image_size(b"\\x89PNG\\r\\n\\x1a\\n\\x00\\x00\\x00\\rIHDR\\x00\\x00\\x00\\xe0\\x00\\x00\\x00\\xe0"), image_size(b"text")
    ((224, 224), None)
    """
    size = _size(bytes(data))
    return size if size and size[0] > 0 and size[1] > 0 else None
