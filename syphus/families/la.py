"""LA: the COCO images of the LLaVA-Interleaved scenes (LACONV, LADD, LACR), ids by COCO image id.

>>> LA.image_id("COCO_train2014_000000498792"), LA.image_id("cat"), LA.query_images("139").stills
('LA_IMG_000000498792', None, (('LA_IMG_000000000139',),))
"""

from __future__ import annotations

import re

from syphus.families.family import Archive, Family, QueryImages


class LAFamily(Family):
    code = "LA"
    pattern = re.compile(r"LA_IMG_\d{12}")
    coco = True
    archives = (Archive("LA-In-Context", "fdc2427451bcfd8a04bab7a1c2305259", 1, (r"^LA(\b|_|-)",)),)

    @property
    def scenes(self) -> tuple[str, ...]:
        return ("LACONV", "LADD", "LACR")

    def owns(self, scene: str) -> bool:
        return scene.startswith("LA")

    def image_id(self, stem: str) -> str | None:
        runs = re.findall(r"\d+", stem)  # the stem's last run of digits is the COCO id
        return f"LA_IMG_{int(runs[-1]):012d}" if runs else None

    def coco_image_id(self, number: int | str, file_name: str) -> str:
        return f"LA_IMG_{int(number):012d}"

    def no_id(self) -> str:
        return "an LA file name must contain the COCO image id (digits)"

    def query_images(self, query_id: str) -> QueryImages | None:
        digits = re.findall(r"\d+", query_id)
        return QueryImages(stills=((f"LA_IMG_{int(digits[-1]):012d}",),)) if digits else None


LA = LAFamily()
