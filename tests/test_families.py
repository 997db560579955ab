"""Scene families: the registry is the one list every scene rule reads, so a new scene is one module and
one entry in ``syphus.families.FAMILIES``; proved here with a family no one needs, registered only in a test."""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path, PurePath

import pytest

from syphus import families
from syphus.errors import UserError
from syphus.families import FAMILIES, Archive, Family, QueryImages, family
from syphus.engine import scenes
from syphus.release import checksum
from syphus.release.convert import sources

ARCHIVE = b"the XY archive, as published"


class XYFamily(Family):
    """Drone clips: 3-digit flight numbers, 5-digit frames; an early release dropped the flight's padding."""

    code = "XY"
    pattern = re.compile(r"XY_IMG_\d{3}_\d{5}")
    frame_digits = 5
    archives = (Archive("XY (Flights)", hashlib.md5(ARCHIVE).hexdigest(), 9, (r"^XY(\b|_)",)),)

    def defect(self, image_id: str) -> tuple[str, str] | None:
        m = re.fullmatch(r"XY_IMG_(\d{1,2})_(\d{5})", image_id)
        return (f"unpadded XY flight ({m[1]})", f"XY_IMG_{int(m[1]):03d}_{m[2]}") if m else None


@pytest.fixture
def with_xy(monkeypatch):
    """XY registered (one entry in FAMILIES); the modules that derive lists from it read it again."""
    derived = (scenes, sources, checksum)
    monkeypatch.setattr(families, "FAMILIES", FAMILIES + (XYFamily(),))
    for module in derived:
        importlib.reload(module)
    yield
    monkeypatch.undo()
    for module in derived:
        importlib.reload(module)


def test_a_family_registered_once_is_a_scene_everywhere(with_xy, tmp_path):
    assert "XY" in scenes.SCENES and "XY" in scenes.IMAGE_FAMILIES and scenes.FRAME_DIGITS["XY"] == 5
    assert "XY" in sources.SCENES and "XY" in sources.VIDEO_SCENES and "XY" not in sources.COCO_SCENES
    # ids: frames, the prefix a plugin's image_prefix names, and the images of a query by its id
    assert scenes.frame_id("XY", "007", 12) == "XY_IMG_007_00012"
    assert scenes.query_images("XY", "007") == QueryImages(prefix="XY_IMG_007_")
    assert scenes.image_id_problem("XY_IMG_007_00012", "XY") is None
    assert scenes.image_id_problem("XY_IMG_7_00012", "XY") == "unpadded XY flight (7)"
    assert scenes.image_id_fixes("XY_IMG_7_00012") == ["XY_IMG_007_00012"]
    assert "XY convention" in scenes.image_id_problem("XY_IMG_0007_1", "XY")
    # convert takes its videos, and refuses what the family does not read
    sources.Sources("XY", videos=tmp_path).check()
    with pytest.raises(UserError, match="--coco is for the LA and CGD scenes"):
        sources.Sources("XY", coco=tmp_path, annotations=[tmp_path / "a.json"]).check()
    # its archive is checked like the published ones
    download = tmp_path / "XY_flights.zip"
    download.write_bytes(ARCHIVE)
    assert checksum.known_archive(download.name) == "XY (Flights)"
    assert checksum.check_archive(download) == (True, f"OK {download}: matches XY (Flights) (md5 "
                                                      f"{hashlib.md5(ARCHIVE).hexdigest()})")
    assert list(checksum.PUBLISHED_MD5)[-1] == "XY (Flights)"  # listed by its row of the table


def test_unregistered_the_family_is_unknown_again():
    assert "XY" not in scenes.SCENES and "XY" not in checksum.PUBLISHED_MD5
    assert family("XY").pattern is None and scenes.image_id_problem("XY_IMG_7_00012", "XY") is None


def test_the_registry_lists_the_release_in_order():
    assert [f.code for f in FAMILIES] == ["LA", "CGD", "DC", "TVC", "VST", "SD", "SN", "E4D"]
    assert scenes.SCENES == ("LACONV", "LADD", "LACR", "CGD", "DC", "TVC", "VST", "SD", "SN", "E4D")
    assert list(checksum.PUBLISHED_MD5) == ["LA-In-Context", "DC", "TVC", "VST", "SN", "SD (General Diff)",
                                            "SD (Subtle Diff)", "E4D (1st Part)"]
    assert sources.COCO_SCENES == ("LA", "CGD") and sources.VIDEO_SCENES == ("DC", "TVC", "SN", "E4D")
    assert sources.PAIR_SCENES == ("SD",)
    assert {f.code for f in FAMILIES if f.layout} == {"TVC", "SN"}


def test_each_family_says_why_a_file_got_no_id():
    assert family("LA").no_id() == "an LA file name must contain the COCO image id (digits)"
    assert family("SN").no_id().startswith("not in ScanNet's <scan>/color/<frame>.jpg")
    assert family("SN").layout_image_id(PurePath("scannet/scene0000_00/depth/000007.jpg")) is None
    assert family("LA").layout_image_id(PurePath(Path("cat.jpg"))) is None
