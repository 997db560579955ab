"""E4D: Ego4D videos, 8-digit frame numbers; a query ``<video>_clip<n>`` is a clip of ``<video>``.

>>> E4D.query_images("abc_clip000003").prefix
'E4D_IMG_abc_'
"""

from __future__ import annotations

import re

from syphus.families.family import Archive, Family, QueryImages

_CLIP = re.compile(r"(?P<video>.+)_clip\d+")


class E4DFamily(Family):
    code = "E4D"
    pattern = re.compile(r"E4D_IMG_[\w-]+_\d{8}")
    frame_digits = 8
    archives = (Archive("E4D (1st Part)", "504b779dbc852c943adbe7862d6924d7", 8, (r"^E4D",)),)

    def query_images(self, query_id: str) -> QueryImages | None:
        m = _CLIP.fullmatch(query_id)
        return QueryImages(prefix=self.frame_prefix(m["video"] if m else query_id))


E4D = E4DFamily()
