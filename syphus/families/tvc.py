"""TVC: TV show clips (TVQA), frames as TVQA's ``<clip>/<frame>.jpg``; the release doubles some clip names.

>>> from pathlib import PurePath
>>> TVC.layout_image_id(PurePath("friends_frames/friends_s01e01_seg02_clip_00/00001.jpg"))
'TVC_IMG_friends_s01e01_seg02_clip_00_0001'
>>> TVC.defect("TVC_IMG_c_c_0001")
('doubled TVC clip name (should be TVC_IMG_c_0001)', 'TVC_IMG_c_0001')
"""

from __future__ import annotations

import re
from pathlib import PurePath

from syphus.families.family import Archive, Family

_DOUBLED = re.compile(r"TVC_IMG_(?P<clip>.+)_(?P=clip)_(?P<frame>\d+)")


class TVCFamily(Family):
    code = "TVC"
    pattern = re.compile(r"TVC_IMG_[\w-]+_\d+")
    frame_digits = 4
    layout = "TVQA's <clip>/<frame>.jpg (friends_frames/<clip>/00001.jpg)"
    archives = (Archive("TVC", "ea16ec0ef7f35e810e0920e85ed467af", 3, (r"^TVC\b",)),)

    def layout_image_id(self, relative: PurePath) -> str | None:
        stem, parents = relative.stem, relative.parts[:-1]
        if parents and stem.isascii() and stem.isdigit():  # the frame number as the file names it
            return self.frame_id(parents[-1], int(stem))
        return self.image_id(stem)  # a file straight in the folder given: its stem

    def defect(self, image_id: str) -> tuple[str, str] | None:
        m = _DOUBLED.fullmatch(image_id)
        if not m:
            return None
        fix = f"TVC_IMG_{m['clip']}_{m['frame']}"
        return f"doubled TVC clip name (should be {fix})", fix


TVC = TVCFamily()
