"""Image tokens: what one image in a request costs, per model, from providers' published formulas.

The formulas live in an editable table (``configs/image_tokens.yaml``, each row's source in its
comments): ``tiles`` (GPT-4o family: a base plus a price per 512 px tile after the image is fitted
in 2048 px and its short side brought to 768 px), ``patches`` (gpt-4.1-mini/nano, o4-mini: 32 px
patches capped at 1536 with the published downscale, times a model multiplier) and ``fixed``
(local servers that resize every image to one size). ``detail="auto"`` counts as ``high``: the
server may choose high, and a rate limit or budget must not undercount. Sizes come from the
image's header (``syphus.image.image_size``), never from decoding it.

>>> table = ImageTable.from_mapping({
...     "gpt-4o": {"method": "tiles", "base": 85, "tile": 170},
...     "gpt-4.1-mini": {"method": "patches", "multiplier": 1.62},
...     "default": {"method": "fixed", "tokens": 1000}})
>>> table.tokens("gpt-4o-2024-08-06", 1024, 1024, "high"), table.tokens("gpt-4o", 4096, 8192, "low")
(765, 85)
>>> table.tokens("gpt-4.1-mini", 1024, 1024, "auto"), table.tokens("llava-7b", 224, 224, "high")
(1659, 1000)
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
from syphus.frames import DETAILS

DEFAULT_IMAGE_TOKENS = "configs/image_tokens.yaml"
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
        self._counted: dict[tuple[str, int, int, str], int] = {}  # a run's frames come in few sizes

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
        key = (model, width, height, detail)
        hit = self._counted.get(key)
        if hit is None:
            hit = self.rule(model)[1].count(width, height, detail)
            if len(self._counted) < 4096:
                self._counted[key] = hit
        return hit


def load_image_table(path: str | Path = DEFAULT_IMAGE_TOKENS) -> ImageTable:
    """The image token table of a YAML file; errors name the file and the row."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no image token table here (see configs/image_tokens.yaml)")
    data = read_yaml(p)  # errors name the file and line
    return ImageTable.from_mapping(data, str(p))
