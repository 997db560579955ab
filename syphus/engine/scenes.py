"""Scenes: the MIMIC-IT scene codes and their id conventions, and the release's known id defects.

>>> image_family("LACONV"), instruction_id("DC", 7, 5)
('LA', 'DC_INS_00007')
>>> image_id_problem("SD_IMG_123_1", "SD")
'unpadded SD id (SD ids have 5 digits: SD_IMG_00123_1)'

The rules that make image ids (``image_id``, ``coco_image_id``, ``pair_image_id``, ``frame_id``)
live here too, so what ``syphus convert`` writes is what ``syphus validate`` accepts:

>>> frame_id("DC", "v1", 7), frame_id("SN", "scene0000_00", 7), pair_image_id(12, 1)
('DC_IMG_v1_0007', 'SN_IMG_scene0000_00_color_000007', 'SD_IMG_00012_1')
>>> all(image_id_problem(i, i.split("_")[0]) is None for i in
...     (frame_id("E4D", "clip", 3), image_id("LA", "COCO_train2014_000000498792"), pair_image_id(7, 2)))
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

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
IMAGE_FAMILIES = tuple(IMAGE_ID)  # LA, CGD, DC, TVC, VST, SD, SN, E4D
FRAME_DIGITS = {"DC": 4, "TVC": 4, "SN": 6, "E4D": 8}  # the video families: digits of a frame number
SCENES = ("LACONV", "LADD", "LACR", "CGD", "DC", "TVC", "VST", "SD", "SN", "E4D")
LANGUAGES = ("en", "zh", "es", "ja", "de", "fr", "ko", "ar")

_INS = re.compile(r"(?P<scene>[A-Z0-9]+(?:_[A-Z0-9]+)*?)_INS_(?P<n>\d{5,})")
_TVC_DOUBLED = re.compile(r"TVC_IMG_(?P<clip>.+)_(?P=clip)_(?P<frame>\d+)")
_SN_SHORT = re.compile(r"SN_IMG_(?P<scene>scene\d{4})_color_(?P<frame>\d+)")
_SD_SHORT = re.compile(r"SD_IMG_(?P<n>\d{1,4})_(?P<side>[12])")
_E4D_CLIP = re.compile(r"(?P<video>.+)_clip\d+")
_CGD_PAIR = re.compile(r"(?P<a>\d+)_(?P<b>\d+)")
_CODE = re.compile(r"[A-Z][A-Z0-9]*")


def image_family(scene: str) -> str:
    """The image id family of a scene code (the LA variants share ``LA_IMG_``)."""
    return "LA" if scene.startswith("LA") else scene


def instruction_id(scene: str, n: int, width: int = 5) -> str:
    return f"{scene}_INS_{n:0{width}d}"


def image_id(family: str, stem: str) -> str | None:
    """The id of a still image by its file stem; for LA the stem's last run of digits is the COCO id.

    >>> image_id("LA", "COCO_train2014_000000498792"), image_id("VST", "42"), image_id("LA", "cat")
    ('LA_IMG_000000498792', 'VST_IMG_42', None)
    """
    if family == "LA":
        runs = re.findall(r"\d+", stem)
        return f"LA_IMG_{int(runs[-1]):012d}" if runs else None
    return f"{family}_IMG_{stem}"


def coco_image_id(family: str, number: int | str, file_name: str) -> str:
    """The id of a COCO image: LA by its COCO image id (12 digits), CGD by its file stem.

    >>> coco_image_id("LA", 139, "000000000139.jpg"), coco_image_id("CGD", 139, "000000000139.jpg")
    ('LA_IMG_000000000139', 'CGD_IMG_000000000139')
    """
    if family == "LA":
        return f"LA_IMG_{int(number):012d}"
    return f"{family}_IMG_{PurePath(file_name).stem}"


def pair_image_id(pair_id: int | str, side: int | str) -> str:
    """The id of one image of an SD pair: ``SD_IMG_<pair id, 5 digits>_<1 or 2>``."""
    return f"SD_IMG_{int(pair_id):05d}_{side}"


def frame_id(family: str, stem: str, k: int) -> str:
    """The id of frame ``k`` (the k-th sample, counted from 0) of the video ``stem``."""
    if family == "SN":
        return f"SN_IMG_{stem}_color_{k:06d}"
    return f"{family}_IMG_{stem}_{k:0{FRAME_DIGITS.get(family, 4)}d}"


_SN_SCAN = re.compile(r"scene\d{4}_\d{2}")


def layout_image_id(family: str, relative: PurePath) -> str | None:
    """The id of an image file by where it sits in a public dataset's folder layout (``relative`` to
    the folder given), or None when it is not in that layout.

    SN: ScanNet's exported frames ``<scan>/color/<frame>.jpg``; TVC: TVQA's frame folders
    ``<clip>/<frame>.jpg`` (the frame number as the file names it, 4 digits); any other family, or a
    TVC file straight in the folder given: the file stem (``image_id``).

    >>> layout_image_id("SN", PurePath("scannet/scene0000_00/color/000007.jpg"))
    'SN_IMG_scene0000_00_color_000007'
    >>> layout_image_id("TVC", PurePath("friends_frames/friends_s01e01_seg02_clip_00/00001.jpg"))
    'TVC_IMG_friends_s01e01_seg02_clip_00_0001'
    >>> layout_image_id("SN", PurePath("000007.jpg")), layout_image_id("VST", PurePath("album/42.jpg"))
    (None, 'VST_IMG_42')
    """
    stem, parents = relative.stem, relative.parts[:-1]
    if family == "SN":
        ok = stem.isascii() and stem.isdigit() and len(parents) >= 2 and parents[-1] == "color"
        return frame_id("SN", parents[-2], int(stem)) if ok and _SN_SCAN.fullmatch(parents[-2]) else None
    if family == "TVC" and parents and stem.isascii() and stem.isdigit():
        return frame_id("TVC", parents[-1], int(stem))
    return image_id(family, stem)


LAYOUTS = {"SN": "ScanNet's <scan>/color/<frame>.jpg (scannet/scene0000_00/color/000000.jpg)",
           "TVC": "TVQA's <clip>/<frame>.jpg (friends_frames/<clip>/00001.jpg)"}


def frame_prefix(family: str, stem: str) -> str:
    """What every frame id of one video starts with (its ``image_prefix`` in an annotation).

    >>> frame_prefix("DC", "v1"), frame_prefix("SN", "scene0000_00")
    ('DC_IMG_v1_', 'SN_IMG_scene0000_00_color_')
    """
    return split_frame(frame_id(family, stem, 0))[0]


def split_frame(image_id: str) -> tuple[str, str]:
    """(prefix, frame number) of a frame id, split after its last ``_``; ("", id) if it has none.

    >>> split_frame("DC_IMG_v1_0007")
    ('DC_IMG_v1_', '0007')
    """
    cut = image_id.rfind("_") + 1
    return image_id[:cut], image_id[cut:]


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
        return f"unpadded SD id (SD ids have 5 digits: {pair_image_id(m['n'], m['side'])})"
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
        fixes.append(pair_image_id(m["n"], m["side"]))
    return fixes


def is_code(text: str) -> bool:
    """Whether ``text`` can name ids (``XX_INS_00001``, ``XX_IMG_...``): capitals and digits, a capital first.

    >>> is_code("EX"), is_code("ex"), is_code("MY_SET")
    (True, False, False)
    """
    return bool(_CODE.fullmatch(text))


@dataclass(frozen=True)
class QueryImages:
    """Where one query's images are by a scene's convention, to be matched against an image file.

    ``stills``: one tuple per image, its possible ids (the first the image file has is taken);
    ``prefix``: what the query's video frames start with (every frame the file has is taken).
    """

    stills: tuple[tuple[str, ...], ...] = ()
    prefix: str | None = None


def _coco_stills(family: str, number: str) -> tuple[str, ...]:
    n = int(number)
    if family == "LA":
        return (f"LA_IMG_{n:012d}",)
    return tuple(f"CGD_IMG_{stem}{n:012d}" for stem in ("", "COCO_train2014_", "COCO_val2014_"))


def query_images(scene: str, query_id: str) -> QueryImages | None:
    """The images of a query by its id and the scene's convention (for plugins that attach none).

    LA: the COCO image id; CGD: ``<a>_<b>`` COCO ids; SD: the pair id (``_1`` and ``_2``); DC, TVC,
    SN: the video's frames; E4D: the frames of ``<video>`` for ``<video>_clip<n>``. VST ids (Flickr
    photos of an album) cannot be derived: None. A code of one's own (``--prefix XX``) looks for
    ``XX_IMG_<query id>``, else frames ``XX_IMG_<query id>_<n>``.

    >>> query_images("SD", "1018").stills, query_images("DC", "v_x").prefix, query_images("VST", "42")
    ((('SD_IMG_01018_1',), ('SD_IMG_01018_2',)), 'DC_IMG_v_x_', None)
    >>> query_images("E4D", "abc_clip000003").prefix, query_images("LACONV", "139").stills
    ('E4D_IMG_abc_', (('LA_IMG_000000000139',),))
    >>> query_images("EX", "scene_0001")
    QueryImages(stills=(('EX_IMG_scene_0001',),), prefix='EX_IMG_scene_0001_')
    """
    family = image_family(scene)
    if family == "VST":
        return None
    if family in FRAME_DIGITS:
        m = _E4D_CLIP.fullmatch(query_id) if family == "E4D" else None
        return QueryImages(prefix=frame_prefix(family, m["video"] if m else query_id))
    if family == "LA":
        digits = re.findall(r"\d+", query_id)
        return QueryImages(stills=(_coco_stills("LA", digits[-1]),)) if digits else None
    if family == "CGD":
        m = _CGD_PAIR.fullmatch(query_id)
        return QueryImages(stills=(_coco_stills("CGD", m["a"]), _coco_stills("CGD", m["b"]))) if m else None
    if family == "SD":
        ok = query_id.isascii() and query_id.isdigit()
        return QueryImages(stills=((pair_image_id(query_id, 1),), (pair_image_id(query_id, 2),))) if ok else None
    return QueryImages(stills=((f"{family}_IMG_{query_id}",),), prefix=f"{family}_IMG_{query_id}_")
