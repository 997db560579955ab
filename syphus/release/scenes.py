"""Scenes: the MIMIC-IT scene codes and their id conventions, and the release's known id defects.

>>> image_family("LACONV"), instruction_id("DC", 7, 5)
('LA', 'DC_INS_00007')
>>> image_id_problem("SD_IMG_123_1", "SD")
'unpadded SD id (SD ids have 5 digits: SD_IMG_00123_1)'

Imports: the standard library only.
"""

from __future__ import annotations

import re

# image id conventions of the release, by image family
IMAGE_ID = {
    "LA": re.compile(r"LA_IMG_\d{12}"),
    "CGD": re.compile(r"CGD_IMG_[\w.-]+"),
    "DC": re.compile(r"DC_IMG_[\w-]+_\d{4}"),
    "TVC": re.compile(r"TVC_IMG_[\w-]+_\d+"),
    "VST": re.compile(r"VST_IMG_\d+"),
    "SD": re.compile(r"SD_IMG_\d{5}_[12]"),
    "SN": re.compile(r"SN_IMG_scene\d{4}_\d{2}_color_\d{6}"),
    "E4D": re.compile(r"E4D_IMG_[\w-]+_\d{8}"),
}
SCENES = ("LACONV", "LADD", "LACR", "CGD", "DC", "TVC", "VST", "SD", "SN", "E4D")
LANGUAGES = ("en", "zh", "es", "ja", "de", "fr", "ko", "ar")

_INS = re.compile(r"(?P<scene>[A-Z0-9]+(?:_[A-Z0-9]+)*?)_INS_(?P<n>\d{5,})")
_TVC_DOUBLED = re.compile(r"TVC_IMG_(?P<clip>.+)_(?P=clip)_(?P<frame>\d+)")
_SN_SHORT = re.compile(r"SN_IMG_(?P<scene>scene\d{4})_color_(?P<frame>\d+)")
_SD_SHORT = re.compile(r"SD_IMG_(?P<n>\d{1,4})_(?P<side>[12])")


def image_family(scene: str) -> str:
    """The image id family of a scene code (the LA variants share ``LA_IMG_``)."""
    return "LA" if scene.startswith("LA") else scene


def instruction_id(scene: str, n: int, width: int = 5) -> str:
    return f"{scene}_INS_{n:0{width}d}"


def scene_of_instruction(ins_id: str) -> str | None:
    """``"DC_INS_00001"`` -> ``"DC"``; None if the id does not follow the convention."""
    m = _INS.fullmatch(ins_id)
    return m.group("scene") if m else None


def image_id_problem(image_id: str, scene: str) -> str | None:
    """Why ``image_id`` breaks the scene's convention (naming a known release defect), or None."""
    family = image_family(scene)
    m = _TVC_DOUBLED.fullmatch(image_id)
    if family == "TVC" and m:
        return f"doubled TVC clip name (should be TVC_IMG_{m['clip']}_{m['frame']})"
    m = _SN_SHORT.fullmatch(image_id)
    if family == "SN" and m:
        return f"SN scene id without its scan number ({m['scene']} should be like {m['scene']}_00)"
    m = _SD_SHORT.fullmatch(image_id)
    if family == "SD" and m:
        return f"unpadded SD id (SD ids have 5 digits: SD_IMG_{int(m['n']):05d}_{m['side']})"
    pattern = IMAGE_ID.get(family)
    if pattern is not None and not pattern.fullmatch(image_id):
        return f"does not follow the {family} convention ({pattern.pattern})"
    return None


def image_id_fixes(image_id: str) -> list[str]:
    """Candidate corrections for an image id hit by a known release defect."""
    fixes = []
    m = _TVC_DOUBLED.fullmatch(image_id)
    if m:
        fixes.append(f"TVC_IMG_{m['clip']}_{m['frame']}")
    m = _SN_SHORT.fullmatch(image_id)
    if m:
        fixes.append(f"SN_IMG_{m['scene']}_00_color_{m['frame']}")
    m = _SD_SHORT.fullmatch(image_id)
    if m:
        fixes.append(f"SD_IMG_{int(m['n']):05d}_{m['side']}")
    return fixes
