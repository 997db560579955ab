"""Family: what one MIMIC-IT image family declares, with the defaults most families share.

A family is the images one or more scenes use (``LA_IMG_...`` for LACONV, LADD and LACR). It says
how its ids look, how ``convert`` reads its public source (a folder of images, COCO, SD pairs,
videos), where a query's images are by its id, the release's known id defects and its published
archives. A code no family declares (``--prefix XX``) gets these defaults:

>>> f = Family("XX")
>>> f.image_id("photo"), f.frame_id("clip", 7), f.query_images("q1")
('XX_IMG_photo', 'XX_IMG_clip_0007', QueryImages(stills=(('XX_IMG_q1',),), prefix='XX_IMG_q1_'))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath


@dataclass(frozen=True)
class QueryImages:
    """Where one query's images are by a scene's convention, to be matched against an image file.

    ``stills``: one tuple per image, its possible ids (the first the image file has is taken);
    ``prefix``: what the query's video frames start with (every frame the file has is taken).
    """

    stills: tuple[tuple[str, ...], ...] = ()
    prefix: str | None = None


@dataclass(frozen=True)
class Archive:
    """One downloadable archive of the release: its name, its published MD5, the file-name patterns
    that say a download is it (searched in order), and its row in the published table (lists keep it)."""

    name: str
    md5: str
    row: int
    patterns: tuple[str, ...]


class Family:
    """One image family; subclass it, set what differs, and register it in ``syphus.families``."""

    code = ""  # ids are <code>_IMG_...; a family of one scene shares its code
    pattern: re.Pattern | None = None  # what every image id of the family matches (None: anything)
    frame_digits: int | None = None  # a video family: digits of a frame number (convert --videos)
    layout: str | None = None  # the public folder layout ``convert --images`` reads, if any
    coco = False  # convert --coco (a COCO image folder with its instances_*.json)
    pairs = False  # convert --pairs (SD's [pair_id, path_a, path_b] list)
    archives: tuple[Archive, ...] = ()

    def __init__(self, code: str | None = None) -> None:
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r})"

    @property
    def scenes(self) -> tuple[str, ...]:
        """The scene codes of the release that use this family's images."""
        return (self.code,)

    def owns(self, scene: str) -> bool:
        """Whether scene code ``scene`` uses this family's images."""
        return scene == self.code

    def image_id(self, stem: str) -> str | None:
        """The id of a still image by its file stem; None when the stem cannot make one."""
        return f"{self.code}_IMG_{stem}"

    def coco_image_id(self, number: int | str, file_name: str) -> str:
        """The id of a COCO image (``--coco``) by its COCO id or file name."""
        return f"{self.code}_IMG_{PurePath(file_name).stem}"

    def frame_id(self, stem: str, k: int) -> str:
        """The id of frame ``k`` (the k-th sample, counted from 0) of the video ``stem``."""
        return f"{self.code}_IMG_{stem}_{k:0{self.frame_digits or 4}d}"

    def pair_image_id(self, pair_id: int | str, side: int | str) -> str:
        """The id of one image of a pair (``--pairs``): ``<code>_IMG_<pair id, 5 digits>_<1 or 2>``."""
        return f"{self.code}_IMG_{int(pair_id):05d}_{side}"

    def frame_prefix(self, stem: str) -> str:
        """What every frame id of the video ``stem`` starts with (its ``image_prefix``): up to the last ``_``."""
        first = self.frame_id(stem, 0)
        return first[:first.rfind("_") + 1]

    def layout_image_id(self, relative: PurePath) -> str | None:
        """The id of an image file by where it sits under the folder given to ``--images``, or None."""
        return self.image_id(relative.stem)

    def no_id(self) -> str:
        """Why an image under ``--images`` got no id (``layout_image_id`` gave None)."""
        return f"not in {self.layout}" if self.layout else f"no {self.code} image id in the file name"

    def query_images(self, query_id: str) -> QueryImages | None:
        """A query's images by its id, for plugins that attach none; None when the id cannot tell.
        By default a still ``<code>_IMG_<query id>``, else frames ``<code>_IMG_<query id>_<n>``."""
        if self.frame_digits is not None:
            return QueryImages(prefix=self.frame_prefix(query_id))
        return QueryImages(stills=((f"{self.code}_IMG_{query_id}",),), prefix=f"{self.code}_IMG_{query_id}_")

    def defect(self, image_id: str) -> tuple[str, str] | None:
        """(what is wrong, the corrected id) when ``image_id`` has one of the release's known defects."""
        return None
