"""Scenes: the MIMIC-IT scene codes and their id conventions, and the release's known id defects,
by scene code; each family's own rules are its module in ``syphus.families``.

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
from pathlib import PurePath

from syphus.families import FAMILIES, QueryImages
from syphus.families import family as family_of
from syphus.families.sd import SD

__all__ = ["FRAME_DIGITS", "IMAGE_FAMILIES", "IMAGE_ID", "LANGUAGES", "LAYOUTS", "QueryImages", "SCENES",
           "coco_image_id", "frame_id", "frame_prefix", "image_family", "image_id", "image_id_fixes",
           "image_id_problem", "instruction_id", "is_code", "layout_image_id", "pair_image_id", "query_images",
           "scene_of_instruction", "split_frame"]

# image id conventions of the release, by image family
IMAGE_ID = {f.code: f.pattern for f in FAMILIES}
IMAGE_FAMILIES = tuple(IMAGE_ID)  # LA, CGD, DC, TVC, VST, SD, SN, E4D
FRAME_DIGITS = {f.code: f.frame_digits for f in FAMILIES if f.frame_digits}  # the video families
SCENES = tuple(scene for f in FAMILIES for scene in f.scenes)  # LACONV, LADD, LACR, CGD, DC, ...
LAYOUTS = {f.code: f.layout for f in FAMILIES if f.layout}  # families with a public folder layout
LANGUAGES = ("en", "zh", "es", "ja", "de", "fr", "ko", "ar")

_INS = re.compile(r"(?P<scene>[A-Z0-9]+(?:_[A-Z0-9]+)*?)_INS_(?P<n>\d{5,})")
_CODE = re.compile(r"[A-Z][A-Z0-9]*")


def image_family(scene: str) -> str:
    """The image id family of a scene code (the LA variants share ``LA_IMG_``)."""
    return family_of(scene).code


def instruction_id(scene: str, n: int, width: int = 5) -> str:
    return f"{scene}_INS_{n:0{width}d}"


def image_id(family: str, stem: str) -> str | None:
    """The id of a still image by its file stem; for LA the stem's last run of digits is the COCO id.

    >>> image_id("LA", "COCO_train2014_000000498792"), image_id("VST", "42"), image_id("LA", "cat")
    ('LA_IMG_000000498792', 'VST_IMG_42', None)
    """
    return family_of(family).image_id(stem)


def coco_image_id(family: str, number: int | str, file_name: str) -> str:
    """The id of a COCO image: LA by its COCO image id (12 digits), CGD by its file stem.

    >>> coco_image_id("LA", 139, "000000000139.jpg"), coco_image_id("CGD", 139, "000000000139.jpg")
    ('LA_IMG_000000000139', 'CGD_IMG_000000000139')
    """
    return family_of(family).coco_image_id(number, file_name)


def pair_image_id(pair_id: int | str, side: int | str) -> str:
    """The id of one image of an SD pair: ``SD_IMG_<pair id, 5 digits>_<1 or 2>``."""
    return SD.pair_image_id(pair_id, side)


def frame_id(family: str, stem: str, k: int) -> str:
    """The id of frame ``k`` (the k-th sample, counted from 0) of the video ``stem``."""
    return family_of(family).frame_id(stem, k)


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
    return family_of(family).layout_image_id(relative)


def frame_prefix(family: str, stem: str) -> str:
    """What every frame id of one video starts with (its ``image_prefix`` in an annotation).

    >>> frame_prefix("DC", "v1"), frame_prefix("SN", "scene0000_00")
    ('DC_IMG_v1_', 'SN_IMG_scene0000_00_color_')
    """
    return family_of(family).frame_prefix(stem)


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
    family = family_of(scene)
    defect = family.defect(image_id)
    if defect is not None:
        return defect[0]
    if family.pattern is not None and not family.pattern.fullmatch(image_id):
        return f"does not follow the {family.code} convention ({family.pattern.pattern})"
    return None


def image_id_fixes(image_id: str) -> list[str]:
    """Candidate corrections for an image id hit by a known release defect."""
    return [defect[1] for f in FAMILIES if (defect := f.defect(image_id)) is not None]


def is_code(text: str) -> bool:
    """Whether ``text`` can name ids (``XX_INS_00001``, ``XX_IMG_...``): capitals and digits, a capital first.

    >>> is_code("EX"), is_code("ex"), is_code("MY_SET")
    (True, False, False)
    """
    return bool(_CODE.fullmatch(text))


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
    return family_of(scene).query_images(query_id)
