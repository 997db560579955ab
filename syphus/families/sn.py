"""SN: ScanNet scans, frames as ScanNet exports them (``<scan>/color/<frame>.jpg``), 6-digit frame numbers.

>>> from pathlib import PurePath
>>> SN.frame_id("scene0000_00", 7), SN.layout_image_id(PurePath("000007.jpg"))
('SN_IMG_scene0000_00_color_000007', None)
>>> SN.defect("SN_IMG_scene0001_color_000007")[1]
'SN_IMG_scene0001_00_color_000007'
"""

from __future__ import annotations

import re
from pathlib import PurePath

from syphus.families.family import Archive, Family

_SHORT = re.compile(r"SN_IMG_(?P<scene>scene\d{4})_color_(?P<frame>\d+)")
_SCAN = re.compile(r"scene\d{4}_\d{2}")


class SNFamily(Family):
    code = "SN"
    pattern = re.compile(r"SN_IMG_scene\d{4}_\d{2}_color_\d{6}")
    frame_digits = 6
    layout = "ScanNet's <scan>/color/<frame>.jpg (scannet/scene0000_00/color/000000.jpg)"
    archives = (Archive("SN", "1c4751c5b2c0bcaaeb94dbc5fb39e7a6", 5, (r"^SN\b",)),)

    def frame_id(self, stem: str, k: int) -> str:
        return f"SN_IMG_{stem}_color_{k:06d}"

    def layout_image_id(self, relative: PurePath) -> str | None:
        stem, parents = relative.stem, relative.parts[:-1]
        ok = stem.isascii() and stem.isdigit() and len(parents) >= 2 and parents[-1] == "color"
        return self.frame_id(parents[-2], int(stem)) if ok and _SCAN.fullmatch(parents[-2]) else None

    def defect(self, image_id: str) -> tuple[str, str] | None:
        m = _SHORT.fullmatch(image_id)
        if not m:
            return None
        return (f"SN scene id without its scan number ({m['scene']} should be like {m['scene']}_00)",
                f"SN_IMG_{m['scene']}_00_color_{m['frame']}")


SN = SNFamily()
