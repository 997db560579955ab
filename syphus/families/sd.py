"""SD: spot-the-difference image pairs, ``SD_IMG_<pair id, 5 digits>_<1 or 2>``; the release leaves some unpadded.

>>> SD.pair_image_id(12, 1), SD.query_images("1018").stills
('SD_IMG_00012_1', (('SD_IMG_01018_1',), ('SD_IMG_01018_2',)))
>>> SD.defect("SD_IMG_123_1")
('unpadded SD id (SD ids have 5 digits: SD_IMG_00123_1)', 'SD_IMG_00123_1')
"""

from __future__ import annotations

import re

from syphus.families.family import Archive, Family, QueryImages

_SHORT = re.compile(r"SD_IMG_(?P<n>\d{1,4})_(?P<side>[12])")


class SDFamily(Family):
    code = "SD"
    pattern = re.compile(r"SD_IMG_\d{5}_[12]")
    pairs = True
    archives = (Archive("SD (General Diff)", "7fd998c10baaba9c6e39b66761a456a0", 6, (r"^(CGD|SD).*general",)),
                Archive("SD (Subtle Diff)", "5175198daebb997672a21307e8b18a96", 7, (r"^SD.*subtle",)))

    def query_images(self, query_id: str) -> QueryImages | None:
        if not (query_id.isascii() and query_id.isdigit()):
            return None
        return QueryImages(stills=((self.pair_image_id(query_id, 1),), (self.pair_image_id(query_id, 2),)))

    def defect(self, image_id: str) -> tuple[str, str] | None:
        m = _SHORT.fullmatch(image_id)
        if not m:
            return None
        fix = self.pair_image_id(m["n"], m["side"])
        return f"unpadded SD id (SD ids have 5 digits: {fix})", fix


SD = SDFamily()
