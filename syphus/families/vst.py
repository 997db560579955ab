"""VST: visual storytelling (Flickr albums); a query's photos cannot be derived from its id."""

from __future__ import annotations

import re

from syphus.families.family import Archive, Family, QueryImages


class VSTFamily(Family):
    code = "VST"
    pattern = re.compile(r"VST_IMG_\d+")
    archives = (Archive("VST", "988569e39aaa24da0df547644514b0d4", 4, (r"^VST\b",)),)

    def query_images(self, query_id: str) -> QueryImages | None:
        return None


VST = VSTFamily()
