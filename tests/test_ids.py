"""Ids that mean one thing: one image per image id (issue 22, item 12).

Release files in the public MIMIC-IT shape (``SD_instructions.json`` with ``meta`` and ``data``,
``SD.json`` ``{image id: base64}``, ``SD.parquet`` with the id as the pandas index), written to disk
and read back through the CLI and the image index, as a user would meet them.
"""

from __future__ import annotations

import base64
import io
import json

import pandas as pd
import pytest

from syphus.cli import main
from syphus.errors import ItemError, UserError
from syphus.release.imageindex import BadImage, ImageIndex

TWICE, BROKEN, FINE = "SD_IMG_00012_1", "SD_IMG_00012_2", "SD_IMG_00013_1"


def png(n: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([n]) * 40


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sd_release(folder) -> None:
    """SD_instructions.json whose two instructions use every image id of the image files below."""
    folder.joinpath("SD_instructions.json").write_text(json.dumps({"meta": {"version": "0.0.1"}, "data": {
        "SD_INS_00001": {"instruction": "What changed?", "answer": "The car moved.",
                         "image_ids": [TWICE, BROKEN], "rel_ins_ids": []},
        "SD_INS_00002": {"instruction": "What is it?", "answer": "A street.",
                         "image_ids": [FINE], "rel_ins_ids": []}}}))


def test_one_image_per_id(tmp_path):
    sd_release(tmp_path)
    # JSON: written by hand, since json.dumps cannot repeat a key; the two copies differ
    (tmp_path / "SD.json").write_text(
        f'{{"{TWICE}": "{b64(png(1))}", "{BROKEN}": "not*base64!", "{FINE}": "{b64(png(3))}", '
        f'"{TWICE}": "{b64(png(2))}"}}')
    # Parquet: as pandas writes it, the id the index, with the same repeat and the same broken value
    frame = pd.DataFrame({"base64": [b64(png(1)), "not*base64!", b64(png(3)), b64(png(2))]},
                         index=pd.Index([TWICE, BROKEN, FINE, TWICE], name="id"))
    frame.to_parquet(tmp_path / "SD.parquet")

    for images in ("SD.json", "SD.parquet"):
        path = tmp_path / images
        out = io.StringIO()
        code = main(["validate", str(tmp_path / "SD_instructions.json"), "--images", str(path)], stream=out)
        text = out.getvalue()
        assert code == 1, text
        assert "error: image ids repeated in the image file: 1" in text and f"e.g. {TWICE}: 2 copies" in text
        assert "error: images that cannot be decoded: 1" in text and f"e.g. {BROKEN}: not valid base64" in text
        assert FINE + ":" not in text and "missing from the image file" not in text

        # the lookup refuses the file: no reader silently picks the first or the last copy
        with pytest.raises(UserError, match=f"{images}: 1 image id.*'{TWICE}' \\(2 copies\\).*keep one copy"):
            ImageIndex.open(path)
        with ImageIndex.open(path, allow_repeats=True) as index:
            assert index.repeated() == [(TWICE, 2)]
            assert index.get(FINE) == png(3)
            with pytest.raises(BadImage, match=f"'{TWICE}' appears 2 times"):
                index.get(TWICE)
            # a broken image is in the file, not "missing": the query needing it fails, naming it
            assert index.missing([BROKEN, FINE]) == []
            with pytest.raises(ItemError, match=f"{images}: the image '{BROKEN}' cannot be decoded: not valid base64"):
                index.get_many([FINE, BROKEN])

    # with one copy per id and the broken image dropped, all agree again
    frame.iloc[[0, 2]].to_parquet(tmp_path / "SD.parquet")
    with ImageIndex.open(tmp_path / "SD.parquet") as index:
        assert index.repeated() == [] and index.get(TWICE) == png(1) and BROKEN not in index
