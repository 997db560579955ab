"""DC: dense captions of ActivityNet videos, 4-digit frame numbers."""

from __future__ import annotations

import re

from syphus.families.family import Archive, Family


class DCFamily(Family):
    code = "DC"
    pattern = re.compile(r"DC_IMG_[\w-]+_\d{4}")
    frame_digits = 4
    archives = (Archive("DC", "0d373a5f511fd1d9f03ac81bb12e04fe", 2, (r"^DC\b",)),)


DC = DCFamily()
