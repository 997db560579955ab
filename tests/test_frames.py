"""Frames: choosing a query's frames and packaging each as an OpenAI chat image part."""

from __future__ import annotations

import base64
import sys

import numpy as np
import pytest

from syphus.image import image_size
from syphus.errors import ItemError, UserError
from syphus.frames import image_part, mime_type, resize, spread


def test_spread_is_even_ordered_and_keeps_both_ends():
    ids = [f"TVC_IMG_clip_{i}" for i in range(16)]
    assert spread(ids, 8) == [ids[i] for i in (0, 2, 4, 6, 9, 11, 13, 15)]
    assert spread(ids, 2) == [ids[0], ids[15]]
    assert spread(ids, 16) == ids and spread(ids, 99) == ids
    assert spread(ids, 1) == [ids[7]]
    assert spread(ids, 0) == [] and spread([], 3) == []
    assert spread(tuple("abcdefghij"), 4) == list("adgj")


@pytest.mark.parametrize("count", range(1, 40))
def test_spread_properties_for_every_size(count):
    ids = list(range(count))
    for n in range(1, count + 2):
        got = spread(ids, n)
        assert len(got) == min(n, count)
        assert got == sorted(set(got))  # in order, nothing twice
        if n >= 2:
            assert got[0] == 0 and got[-1] == count - 1
        assert got == spread(ids, n)  # deterministic
        if 2 <= n <= count:  # gaps differ by at most one
            gaps = [b - a for a, b in zip(got, got[1:])]
            assert max(gaps) - min(gaps) <= 1


def encoded(ext: str, w: int, h: int) -> bytes:
    cv2 = pytest.importorskip("cv2")
    img = (np.arange(w * h * 3) % 251).astype(np.uint8).reshape(h, w, 3)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext, mime", [(".png", "image/png"), (".jpg", "image/jpeg"), (".gif", "image/gif"),
                                       (".webp", "image/webp"), (".bmp", "image/bmp")])
def test_image_part_is_a_data_url_with_the_mime_of_the_bytes(ext, mime):
    data = encoded(ext, 12, 8)
    part = image_part(data, "high")
    assert part == {"type": "image_url",
                    "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}", "detail": "high"}}
    assert mime_type(data) == mime
    assert image_part(data)["image_url"]["detail"] == "auto"


def test_image_part_refuses_what_is_no_image():
    with pytest.raises(ItemError, match="no PNG, JPEG") as e:
        image_part(b"<html>not an image</html>", "low")
    assert e.value.kind == "bad_image"
    with pytest.raises(ValueError, match="detail"):
        image_part(encoded(".png", 2, 2), "medium")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_resize_shrinks_the_longer_side_and_keeps_the_format(ext):
    data = encoded(ext, 640, 480)
    small = resize(data, 224)
    assert image_size(small) == (224, 168)
    assert small[:4] == data[:4]
    assert image_size(resize(encoded(ext, 100, 900), 300)) == (33, 300)


def test_resize_leaves_an_image_that_fits_as_it_is():
    data = encoded(".png", 224, 224)
    assert resize(data, 224) is data and resize(data, 1000) is data


def test_resize_writes_gif_as_png():
    small = resize(encoded(".gif", 300, 100), 150)
    assert small.startswith(b"\x89PNG") and image_size(small) == (150, 50)


def test_resize_of_a_broken_image_fails_the_item():
    broken = encoded(".png", 600, 600)[:60]  # the header says 600 x 600; the pixels are gone
    with pytest.raises(ItemError, match="could not be decoded"):
        resize(broken, 100)
    with pytest.raises(ItemError):
        resize(b"no image", 100)
    with pytest.raises(ValueError):
        resize(broken, 0)


def test_resize_without_opencv_names_the_extra(monkeypatch):
    data = encoded(".png", 300, 300)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(UserError, match=r"pip install '\.\[images\]'"):
        resize(data, 100)
    assert resize(data, 300) is data  # what fits never needs OpenCV
