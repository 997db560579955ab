"""CGD: spot-the-difference pairs of COCO images, ids by file stem; a query ``<a>_<b>`` is the two.

>>> CGD.coco_image_id(139, "000000000139.jpg"), CGD.query_images("1_2").stills[0][0]
('CGD_IMG_000000000139', 'CGD_IMG_000000000001')
"""

from __future__ import annotations

import re

from syphus.families.family import Family, QueryImages

_PAIR = re.compile(r"(?P<a>\d+)_(?P<b>\d+)")


def _stills(number: str) -> tuple[str, ...]:
    n = int(number)
    return tuple(f"CGD_IMG_{stem}{n:012d}" for stem in ("", "COCO_train2014_", "COCO_val2014_"))


class CGDFamily(Family):
    code = "CGD"
    pattern = re.compile(r"CGD_IMG_[\w.-]+")
    coco = True

    def query_images(self, query_id: str) -> QueryImages | None:
        m = _PAIR.fullmatch(query_id)
        return QueryImages(stills=(_stills(m["a"]), _stills(m["b"]))) if m else None


CGD = CGDFamily()
