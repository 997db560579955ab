"""Image tokens: the table in configs/image_tokens.yaml against the providers' published worked examples."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from syphus.engine.imagetokens import ImageRule, ImageTable, load_image_table
from syphus.image import image_size
from syphus.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def table() -> ImageTable:
    return load_image_table(ROOT / "configs" / "image_tokens.yaml")


# OpenAI, Images and vision guide, "Calculating costs":
# - "A 1024 x 1024 square image in detail: high mode costs 765 tokens" (768 x 768, 4 tiles: 170 * 4 + 85)
# - "A 2048 x 4096 image in detail: high mode costs 1105 tokens" (1024 x 2048 -> 768 x 1536, 6 tiles)
# - "A 4096 x 8192 image in detail: low most costs 85 tokens"
@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4.1", "gpt-4.1-2025-04-14", "GPT-4o"])
def test_the_published_tile_examples(table, model):
    assert table.tokens(model, 1024, 1024, "high") == 765
    assert table.tokens(model, 2048, 4096, "high") == 1105
    assert table.tokens(model, 4096, 8192, "low") == 85


def test_auto_is_counted_as_high(table):
    assert table.tokens("gpt-4o", 2048, 4096, "auto") == 1105
    assert table.tokens("gpt-4o", 2048, 4096) == 1105


def test_tiles_never_enlarge_a_small_image(table):
    # a 224 x 224 MIMIC-IT frame is one tile; 128 x 64 too (users' measured bills agree: 255 for gpt-4o)
    assert table.tokens("gpt-4o", 224, 224, "high") == 85 + 170
    assert table.tokens("gpt-4o", 128, 64, "high") == 255
    assert table.tokens("gpt-4o", 513, 100, "high") == 85 + 2 * 170
    assert table.tokens("gpt-4o", 768, 768, "high") == 85 + 4 * 170


def test_other_tile_families_have_their_own_base_and_tile(table):
    assert table.tokens("gpt-4o-mini", 1024, 1024, "high") == 2833 + 4 * 5667
    assert table.tokens("gpt-4o-mini-2024-07-18", 4096, 8192, "low") == 2833
    assert table.tokens("o3", 128, 64, "high") == 75 + 150
    assert table.tokens("o1-pro", 1024, 1024, "high") == 75 + 4 * 150
    assert table.tokens("gpt-5", 1024, 1024, "high") == 70 + 4 * 140
    assert table.tokens("computer-use-preview", 2048, 4096, "high") == 65 + 6 * 129


# The same guide, patch-based models: "1024 x 1024 ... 32 * 32 = 1024 [patches], below the cap of 1536";
# "1800 x 2400 ... shrink factor sqrt(1536 * 32^2 / (1800 * 2400)) = 0.603 ... 1086 / 32 = 33.94 ...
# 33 / 33.94 = 0.97 to fit the width in a whole number of patches ... 1056 x 1408 ... 33 * 44 = 1452";
# then a model multiplier: gpt-4.1-mini 1.62, gpt-4.1-nano 2.46, o4-mini 1.72.
def test_the_published_patch_examples():
    rule = ImageRule(method="patches")
    assert rule.count(1024, 1024) == 1024
    assert rule.count(1800, 2400) == 1452
    assert rule.count(2400, 1800) == 1452


@pytest.mark.parametrize("model, multiplier", [("gpt-4.1-mini", "1.62"), ("gpt-4.1-nano", "2.46"),
                                               ("o4-mini-2025-04-16", "1.72")])
def test_patch_models_apply_their_multiplier_rounded_up(table, model, multiplier):
    from fractions import Fraction
    m = Fraction(multiplier)
    for (w, h), patches in {(1024, 1024): 1024, (1800, 2400): 1452, (128, 64): 8, (224, 224): 49}.items():
        expected = -(-patches * m.numerator // m.denominator)
        assert table.tokens(model, w, h, "high") == expected
        assert table.tokens(model, w, h, "low") == expected  # detail is not in the published formula
    assert table.tokens("gpt-4.1-mini", 1024, 1024) == 1659  # 1658.88, not 1660 from float error


def test_patches_never_pass_the_cap():
    rule = ImageRule(method="patches")
    for w, h in [(4096, 4096), (1, 100_000), (100_000, 1), (2049, 768), (2048, 768), (10_000, 7_321), (33, 33)]:
        assert 1 <= rule.count(w, h) <= 1536
    assert rule.count(2048, 768) == 1536  # exactly at the cap: not shrunk
    assert rule.count(33, 33) == 4


def test_unknown_and_local_models(table):
    assert table.rule("some-new-model")[0] == "default"
    assert table.tokens("some-new-model", 224, 224, "low") == 255  # low counted as high
    assert table.tokens("some-new-model", 1024, 1024, "high") == 765
    assert table.tokens("llava-hf/llava-1.5-7b-hf", 224, 224) == 576
    assert table.tokens("llava-v1.6-mistral-7b", 224, 224) == 2880
    assert table.tokens("Qwen/Qwen2-VL-7B-Instruct", 224, 224) == 64 + 2  # 8 x 8 patches of 28 px
    assert table.tokens("Qwen/Qwen2.5-VL-3B-Instruct", 448, 448) == 256 + 2
    assert table.rule("Qwen/Qwen-VL-Chat")[0] == "qwen-vl"


def test_longest_prefix_wins(table):
    assert table.rule("gpt-4.1-mini-2025-04-14")[0] == "gpt-4.1-mini"
    assert table.rule("gpt-4.1-2025-04-14")[0] == "gpt-4.1"
    assert table.rule("gpt-5-mini")[0] == "gpt-5-mini"
    assert table.rule("gpt-5-chat-latest")[0] == "gpt-5"


def test_bad_detail_and_sizes(table):
    with pytest.raises(ValueError, match="detail"):
        table.tokens("gpt-4o", 10, 10, "medium")
    with pytest.raises(ValueError, match="at least 1 x 1"):
        table.tokens("gpt-4o", 0, 10, "high")


FIXED = "default: {method: fixed, tokens: 1}\n"


@pytest.mark.parametrize("text, says", [
    ("gpt-4o: {method: tiles, base: 85}\n" + FIXED, r"row 'gpt-4o'.*needs 'tile'"),
    ("gpt-4o: {method: tiles, base: 85, tile: 170, tiel: 3}\n" + FIXED, r"row 'gpt-4o': tiel: Extra inputs"),
    ("gpt-4o: {method: tiles, base: 85, tile: 170}\n", "no 'default' row"),
    ("default: {method: fixed}\n", "row 'default'.*needs 'tokens'"),
    ("default: {method: patches, multiplier: 0}\n", "row 'default': multiplier"),
    ("default: [unclosed\n", "not valid YAML"),
    ("- a list\n", "must be a mapping"),
])
def test_table_errors_name_the_file_and_row(tmp_path, text, says):
    path = tmp_path / "image_tokens.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=says) as e:
        load_image_table(path)
    assert str(e.value).startswith(str(path))


def test_a_missing_table(tmp_path):
    with pytest.raises(UserError, match="no image token table here"):
        load_image_table(tmp_path / "nope.yaml")


def test_every_row_of_the_shipped_table_counts(table):
    for name, rule in [*table.rules.items(), ("default", table.default)]:
        for w, h in [(1, 1), (224, 224), (1920, 1080), (8000, 200)]:
            for detail in ("low", "high", "auto"):
                assert rule.count(w, h, detail) > 0, (name, w, h, detail)


# image_size: real files made with OpenCV, and headers made by hand

WEBP_QUALITY = 64  # cv2.IMWRITE_WEBP_QUALITY (above 100: lossless)


def encoded(ext: str, w: int, h: int, params: list[int] | None = None) -> bytes:
    cv2 = pytest.importorskip("cv2")
    img = (np.arange(w * h * 3) % 251).astype(np.uint8).reshape(h, w, 3)
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext, params", [(".png", None), (".jpg", None), (".gif", None), (".bmp", None),
                                         (".webp", [WEBP_QUALITY, 80]), (".webp", [WEBP_QUALITY, 101])])  # lossy, lossless
@pytest.mark.parametrize("w, h", [(224, 224), (13, 7), (640, 480), (1, 300)])
def test_image_size_of_real_files(ext, params, w, h):
    data = encoded(ext, w, h, params)
    assert image_size(data) == (w, h)


def test_webp_lossy_and_lossless_chunks_are_both_covered():
    assert encoded(".webp", 13, 7, [WEBP_QUALITY, 80])[12:16] == b"VP8 "
    assert encoded(".webp", 13, 7, [WEBP_QUALITY, 101])[12:16] == b"VP8L"


def test_image_size_of_headers_made_by_hand():
    # WebP extended (VP8X): canvas width - 1 and height - 1 in 24 bits each
    vp8x = b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8X" + struct.pack("<I", 10) + b"\x10\x00\x00\x00" \
        + (1999).to_bytes(3, "little") + (2999).to_bytes(3, "little")
    assert image_size(vp8x) == (2000, 3000)
    # a progressive JPEG (SOF2) after an APP1 segment, with fill bytes before the marker
    sof2 = b"\xff\xd8" + b"\xff\xe1\x00\x04ab" + b"\xff\xff\xc2\x00\x11\x08" + struct.pack(">HH", 1080, 1920) + b"\x03"
    assert image_size(sof2) == (1920, 1080)
    assert image_size(b"GIF87a" + struct.pack("<HH", 320, 200)) == (320, 200)
    # a top-down BMP stores a negative height
    bmp = b"BM" + bytes(12) + struct.pack("<Iii", 40, 64, -48)
    assert image_size(bmp) == (64, 48)


@pytest.mark.parametrize("data", [b"", b"text", b"\x89PNG\r\n\x1a\n\x00\x00", b"\xff\xd8\xff\xe0\x00\x10JFIF",
                                  b"\xff\xd8\xff\xda\x00\x02", b"GIF89a\x01", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
                                  b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x00\x00\x00\x00\x05"])
def test_image_size_of_what_is_no_image_or_cut_short(data):
    assert image_size(data) is None


def test_image_size_reads_only_the_header():
    data = encoded(".jpg", 300, 200)
    assert image_size(data[:400]) == (300, 200)  # the frame header sits near the start
    assert image_size(encoded(".png", 300, 200)[:24]) == (300, 200)
