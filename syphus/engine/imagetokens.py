"""Image tokens: what one image in a request costs, per model, from providers' published formulas.

The formulas live in an editable table (``configs/image_tokens.yaml``, each row's source in its
comments): ``tiles`` (GPT-4o family: a base plus a price per 512 px tile after the image is fitted
in 2048 px and its short side brought to 768 px), ``patches`` (gpt-4.1-mini/nano, o4-mini: 32 px
patches capped at 1536 with the published downscale, times a model multiplier) and ``fixed``
(local servers that resize every image to one size). ``detail="auto"`` counts as ``high``: the
server may choose high, and a rate limit or budget must not undercount. ``image_size`` reads
the width and height from a PNG, JPEG, GIF, WebP or BMP header without decoding the image.

>>> table = ImageTable.from_mapping({
...     "gpt-4o": {"method": "tiles", "base": 85, "tile": 170},
...     "gpt-4.1-mini": {"method": "patches", "multiplier": 1.62},
...     "default": {"method": "fixed", "tokens": 1000}})
>>> table.tokens("gpt-4o-2024-08-06", 1024, 1024, "high"), table.tokens("gpt-4o", 4096, 8192, "low")
(765, 85)
>>> table.tokens("gpt-4.1-mini", 1024, 1024, "auto"), table.tokens("llava-7b", 224, 224, "high")
(1659, 1000)
>>> image_size(b"GIF89a\\x10\\x00\\x08\\x00" + bytes(20))
(16, 8)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from syphus.config import read_yaml
from syphus.errors import UserError

DEFAULT_IMAGE_TOKENS = "configs/image_tokens.yaml"
DETAILS = ("low", "high", "auto")
DEFAULT_ROW = "default"


class ImageRule(BaseModel):
    """One row of the table: how a model family counts an image (see the YAML's header)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["tiles", "patches", "fixed"]
    base: int = Field(0, ge=0)
    tile: int = Field(0, ge=0)
    tile_size: int = Field(512, ge=1)
    fit: int = Field(2048, ge=1)
    short_side: int = Field(768, ge=1)
    patch: int = Field(32, ge=1)
    max_patches: int = Field(1536, ge=1)
    tokens: int | None = Field(None, ge=0)
    low: int | Literal["high"] | None = None
    multiplier: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> "ImageRule":
        if self.method == "tiles" and not self.tile:
            raise ValueError("a tiles row needs 'tile' (tokens per tile) and 'base'")
        if self.method == "fixed" and self.tokens is None:
            raise ValueError("a fixed row needs 'tokens'")
        return self

    def count(self, width: int, height: int, detail: str = "auto") -> int:
        """Tokens of one ``width`` x ``height`` image sent with ``detail`` (low, high or auto)."""
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {DETAILS}, not {detail!r}")
        if width < 1 or height < 1:
            raise ValueError(f"an image is at least 1 x 1 pixels, not {width} x {height}")
        if detail == "low" and isinstance(self.low, int):
            raw = self.low
        elif self.method == "fixed":
            raw = self.tokens
        elif self.method == "tiles":
            raw = self.base if detail == "low" and self.low is None else self.base + self.tile * self._tiles(width, height)
        else:
            raw = self.base + self._patches(width, height)
        # the multiplier as written (1.62 is 81/50), so 1024 * 1.62 rounds up to 1659, not 1660
        return math.ceil(raw * Fraction(str(self.multiplier)))

    def _tiles(self, w: int, h: int) -> int:
        if max(w, h) > self.fit:
            m = max(w, h)
            w, h = max(1, w * self.fit // m), max(1, h * self.fit // m)
        if min(w, h) > self.short_side:
            s = min(w, h)
            w, h = max(1, w * self.short_side // s), max(1, h * self.short_side // s)
        return -(-w // self.tile_size) * -(-h // self.tile_size)

    def _patches(self, w: int, h: int) -> int:
        p, cap = self.patch, self.max_patches
        n = -(-w // p) * -(-h // p)
        if n > cap:
            shrink = math.sqrt(cap * p * p / (w * h))
            across, down = w * shrink / p, h * shrink / p  # patches a side, fractional
            shrink *= min(max(1, math.floor(across)) / across, max(1, math.floor(down)) / down)
            # whole pixels, rounded down, then whole patches: 1055.9999 px and 1056 px are both 33 patches
            rw, rh = max(1, math.floor(w * shrink)), max(1, math.floor(h * shrink))
            n = -(-rw // p) * -(-rh // p)
        return min(n, cap)


_ROWS = TypeAdapter(dict[str, ImageRule])


class ImageTable:
    """Model name -> ``ImageRule``; unknown models get the ``default`` row."""

    def __init__(self, rules: Mapping[str, ImageRule], default: ImageRule, source: str = "<table>"):
        self.rules = {name.lower(): rule for name, rule in rules.items()}
        self.default, self.source = default, source

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<table>") -> "ImageTable":
        """A table from ``{model: {method: ..., ...}}`` (what the YAML holds); errors name ``source`` and the row."""
        if not isinstance(data, Mapping):
            raise UserError(f"{source}: the image token table must map model names to rows")
        try:
            rules = _ROWS.validate_python({str(name): entry for name, entry in data.items()})
        except ValidationError as e:
            first = e.errors()[0]
            name, *field = first["loc"]
            where = ".".join(map(str, field))
            raise UserError(f"{source}: row {name!r}: {where + ': ' if where else ''}{first['msg']}; "
                            "see the header of configs/image_tokens.yaml for each method's fields") from None
        default = rules.pop(DEFAULT_ROW, None)
        if default is None:
            raise UserError(f"{source}: no '{DEFAULT_ROW}' row (what unknown models cost); add one")
        return cls(rules, default, source)

    def rule(self, model: str) -> tuple[str, ImageRule]:
        """(the row's name, the row) for ``model``: exact, else the longest row name that starts it,
        trying the whole name, then the part after its last '/'; else ``default``."""
        name = model.lower()
        for candidate in (name, name.rsplit("/", 1)[-1]):
            if candidate in self.rules:
                return candidate, self.rules[candidate]
            best = max((row for row in self.rules if candidate.startswith(row)), key=len, default=None)
            if best is not None:
                return best, self.rules[best]
        return DEFAULT_ROW, self.default

    def tokens(self, model: str, width: int, height: int, detail: str = "auto") -> int:
        """Tokens that one ``width`` x ``height`` image costs ``model`` at ``detail`` (low, high, auto)."""
        return self.rule(model)[1].count(width, height, detail)


def load_image_table(path: str | Path = DEFAULT_IMAGE_TOKENS) -> ImageTable:
    """The image token table of a YAML file; errors name the file and the row."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no image token table here (see configs/image_tokens.yaml)")
    data = read_yaml(p)  # errors name the file and line
    return ImageTable.from_mapping(data, str(p))


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
