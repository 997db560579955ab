"""Images on the wire: stored base64 sent as it is when it fits, resized when it does not, decoded off the loop.

Requests go to the real fake server (``tests/fakeserver.py``); images are real JPEGs and PNGs made
with OpenCV, in a JSON image file as ``syphus convert`` writes it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import threading

import cv2
import numpy as np
import pytest

from syphus.config import load_config
from syphus.engine.attachment import Attacher, Prepared, PreparedImages
from syphus.engine.imageindex import ImageIndex
from syphus import frames
from syphus.frames import DataUrl, body_json, resize
import re

from syphus.image import clean_base64, image_size, stored_base64, stored_size
from tests.helpers import lines
from tests.test_vision import TABLE, items_of, png, run

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def jpeg(width: int, height: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", pixels)
    assert ok
    return data.tobytes()


def non_canonical(data: bytes) -> str:
    """Base64 of ``data`` with the unused bits before its padding set: the same bytes, other text, so
    text that reaches the wire unchanged was never decoded and encoded again."""
    while len(data) % 3 == 0:
        data += b"\0"  # JPEG readers stop at the end marker; the padding needs a partial quad
    text = base64.b64encode(data).decode()
    pad = len(text) - len(text.rstrip("="))
    k = len(text) - pad - 1
    changed = text[:k] + B64[B64.index(text[k]) | (0b1111 if pad == 2 else 0b11)] + text[k + 1:]
    assert changed != text and base64.b64decode(changed) == data
    return changed


def sent_urls(server) -> list[str]:
    return [p["image_url"]["url"] for r in server.requests for p in r.body["messages"][-1]["content"]
            if p["type"] == "image_url"]


def test_a_fitting_jpeg_goes_on_the_wire_as_the_very_text_it_is_stored_as(scenes, server):
    item = items_of("SD")[0]
    stored = {i: non_canonical(jpeg(64, 48, n)) for n, i in enumerate(item["image_ids"])}
    (scenes / "SD.json").write_text(json.dumps(stored))
    code, out = run(["--name", "SD", "--images", "SD.json", "--image_max_side", "128", "--slice_end", "1",
                     "--reply", "text"], server)
    assert code == 0, out
    assert sent_urls(server) == ["data:image/jpeg;base64," + stored[i] for i in item["image_ids"]]


def test_an_image_over_the_max_side_is_resized_before_it_is_sent(scenes, server):
    item = items_of("SD")[0]
    stored = {i: base64.b64encode(png(300, 200, n, noise=True)).decode() for n, i in enumerate(item["image_ids"])}
    (scenes / "SD.json").write_text(json.dumps(stored))
    code, out = run(["--name", "SD", "--images", "SD.json", "--image_max_side", "90", "--slice_end", "1",
                     "--reply", "text"], server)
    assert code == 0, out
    urls = sent_urls(server)
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)
    assert [image_size(base64.b64decode(u.split(",", 1)[1])) for u in urls] == [(90, 60), (90, 60)]


def test_a_corrupt_image_is_the_querys_error_naming_the_file_and_the_id(scenes, server):
    items = items_of("SD")[:2]
    good = base64.b64encode(png(300, 200, 1)).decode()
    cut = base64.b64encode(png(300, 200, 2, noise=True)[:200]).decode()  # a PNG header, then nothing
    stored = {items[0]["image_ids"][0]: good, items[0]["image_ids"][1]: base64.b64encode(b"no image at all").decode(),
              items[1]["image_ids"][0]: good, items[1]["image_ids"][1]: cut}
    (scenes / "SD.json").write_text(json.dumps(stored))
    code, out = run(["--name", "SD", "--images", "SD.json", "--image_max_side", "100", "--slice_end", "2",
                     "--reply", "text"], server)
    assert code == 0, out
    errors = {e["id"]: e for e in lines(scenes / "output" / "SD" / "v1" / "errors.jsonl")}
    assert set(errors) == {items[0]["id"], items[1]["id"]} and server.request_count == 0
    for item in items:
        e = errors[item["id"]]
        assert e["kind"] == "bad_image" and "SD.json" in e["message"] and repr(item["image_ids"][1]) in e["message"]
    assert "no PNG, JPEG" in errors[items[0]["id"]]["message"]
    assert "could not be decoded" in errors[items[1]["id"]]["message"]


def attacher(tmp_path, images: dict[str, bytes], **kw) -> Attacher:
    path = tmp_path / "BN.json"
    path.write_text(json.dumps({i: base64.b64encode(b).decode() for i, b in images.items()}))
    flags = {"images.path": str(path), **({"images.max_side": kw.pop("max_side")} if "max_side" in kw else {})}
    cfg = load_config(None, flags)
    return Attacher(cfg.images, "gpt-4o", index=ImageIndex.open(path), table=TABLE, **kw)


def test_prepared_images_are_shared_by_the_queries_that_share_them_and_bounded_by_bytes(tmp_path):
    images = {f"BN_IMG_{k:03d}": png(64, 48, k, noise=True) for k in range(12)}
    url_bytes = len("data:image/png;base64,") + len(base64.b64encode(images["BN_IMG_000"]))
    with attacher(tmp_path, images, cache_bytes=4 * url_bytes + 10) as att:
        first, _ = att.frames({"id": "a", "image_ids": ["BN_IMG_000", "BN_IMG_001"]})
        again, _ = att.frames({"id": "b", "image_ids": ["BN_IMG_001", "BN_IMG_000"]})
        assert again[1].part["image_url"]["url"] is first[0].part["image_url"]["url"]  # one copy, not two
        for k in range(12):
            att.frames({"id": f"q{k}", "image_ids": [f"BN_IMG_{k:03d}"]})
            assert att.prepared.bytes <= 4 * url_bytes + 10
        assert len(att.prepared) == 4 and att.prepared.get("BN_IMG_011") is not None
        assert att.prepared.get("BN_IMG_000") is None  # the least recently used went first
    cache = PreparedImages(5)
    cache.put("big", Prepared("x" * 6, None))
    assert len(cache) == 0 and cache.bytes == 0  # larger than the whole cache: sent, never kept


def test_a_big_decode_runs_off_the_event_loop(tmp_path):
    gate, ran_on = threading.Event(), []

    def slow_resize(data: bytes, max_side: int) -> bytes:
        ran_on.append(threading.get_ident())
        assert gate.wait(30), "the heartbeat never ticked: the decode held the event loop"
        return resize(data, max_side)

    async def main() -> tuple[list, int]:
        ticks = 0

        async def heartbeat():
            nonlocal ticks
            while not gate.is_set():
                ticks += 1
                if ticks == 50:
                    gate.set()  # the loop ran 50 times while the decode waited: it was never blocked
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        with attacher(tmp_path, {"BN_IMG_0": png(400, 300, 3, noise=True)}, max_side=100, resizer=slow_resize) as att:
            frames, missing = await att.read({"id": "q", "image_ids": ["BN_IMG_0"]})
            att.pool.shutdown()  # a query whose images are all prepared needs neither the pool nor the file
            again, _ = await att.read({"id": "r", "image_ids": ["BN_IMG_0"]})
            assert again[0].part["image_url"]["url"] is frames[0].part["image_url"]["url"] and len(ran_on) == 1
        await beat
        return frames, ticks

    loop_thread = threading.get_ident()
    frames, ticks = asyncio.run(main())
    assert ticks >= 50 and ran_on and ran_on[0] != loop_thread
    assert frames[0].size == (100, 75)


def test_a_body_with_images_spliced_in_is_exactly_the_json_of_its_messages():
    url = DataUrl("data:image/png;base64," + base64.b64encode(png(8, 8, 1)).decode())
    messages = [{"role": "system", "content": 'é "quoted"\n'},
                {"role": "user", "content": [{"type": "text", "text": "ü"}, {"type": "image_url", "image_url": {
                    "url": url, "detail": "low"}}, {"type": "image_url", "image_url": {"url": url}}]}]
    plain = json.dumps(messages, ensure_ascii=False).encode()
    assert body_json(messages, b"{", b"}") == b"{" + plain + b"}"
    messages[0]["content"] = f'"{frames._MARK}"'  # the stand-in in a message's own text: encoded the plain way
    assert body_json(messages) == json.dumps(messages, ensure_ascii=False).encode()
    with pytest.raises(ValueError):
        body_json([{"role": "user", "content": [{"type": "text", "text": float("nan")}]}])


CLEAN = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)")


def test_clean_base64_takes_exactly_what_a_data_url_can_carry_as_it_is():
    cases = {b"R0lGODlh": "R0lGODlh", b"aGk=": "aGk=", b"aA==": "aA==", b"": None, b"aGk": None, b"a===": None,
             b"a=k=": None, b"=aGk": None, b"aG\\": None, b'aGk"': None, b"aG k": None, b"aGk\n": None,
             "aGké".encode(): None, b"aGk=aGk=": None, b"ab-_": None}
    assert {data: clean_base64(data) for data in cases} == cases
    rng = random.Random(7)
    alphabet = B64.encode() + b'= \n"\\-_\xc3'
    for _ in range(3000):  # against the plain definition, on texts mostly clean and a few bytes off
        data = bytearray(base64.b64encode(rng.randbytes(rng.randrange(0, 12))))
        for _ in range(rng.choice((0, 0, 1, 2))):
            if data:
                data[rng.randrange(len(data))] = rng.choice(alphabet)
        expected = data.decode("latin-1") if CLEAN.fullmatch(bytes(data)) else None
        assert clean_base64(bytes(data)) == expected, data
        text = data.decode("latin-1")
        assert stored_base64(text) == (text if expected is not None and text.isascii() else None)


def test_an_images_size_comes_from_the_first_bytes_of_its_base64_whatever_its_format():
    picture = np.zeros((37, 53, 3), dtype=np.uint8)
    for ext in (".png", ".jpg", ".gif", ".webp", ".bmp"):
        if ext == ".gif":  # OpenCV writes no GIF: a header is enough to size one
            data = b"GIF89a" + (53).to_bytes(2, "little") + (37).to_bytes(2, "little") + bytes(40)
        else:
            data = cv2.imencode(ext, picture)[1].tobytes()
        assert stored_size(base64.b64encode(data).decode()) == (ext.strip("."), (53, 37)), ext
    # a JPEG whose frame header comes after 3 KB of metadata (EXIF, say): read from its first 4 KiB
    plain = cv2.imencode(".jpg", picture)[1].tobytes()
    app1 = b"\xff\xe1" + (3002).to_bytes(2, "big") + bytes(3000)
    assert stored_size(base64.b64encode(plain[:2] + app1 + plain[2:]).decode()) == ("jpg", (53, 37))
    assert stored_size(base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()) == ("png", None)  # a header cut short


def test_a_stored_value_with_json_escapes_is_sent_as_the_text_it_stands_for(tmp_path):
    data = png(16, 16, 5, noise=True)
    text = base64.b64encode(data).decode()
    assert "/" in text  # so the file holds escapes
    path = tmp_path / "BN.json"
    path.write_text('{"BN_IMG_0": "' + text.replace("/", "\\/") + '", "BN_IMG_1": "' + text + '"}')
    cfg = load_config(None, {"images.path": str(path)})
    with Attacher(cfg.images, "gpt-4o", index=ImageIndex.open(path), table=TABLE) as att:
        got, missing = att.frames({"id": "q", "image_ids": ["BN_IMG_0", "BN_IMG_1"]})
    assert missing == [] and [f.part["image_url"]["url"] for f in got] == ["data:image/png;base64," + text] * 2
    assert [f.size for f in got] == [(16, 16), (16, 16)]


def test_the_prepared_image_cache_and_the_decode_threads_come_from_the_config(tmp_path):
    path = tmp_path / "BN.json"
    path.write_text(json.dumps({"BN_IMG_0": base64.b64encode(png(32, 32, 1)).decode()}))
    index = ImageIndex.open(path)
    default = load_config(None, {"images.path": str(path)}).images
    with Attacher(default, "gpt-4o", index=index, table=TABLE) as att:
        assert att.prepared.max_bytes == 64 << 20 and att.pool._max_workers >= 1
    chosen = load_config(None, {"images.path": str(path), "images.cache_mb": 0.5, "images.threads": 3}).images
    with Attacher(chosen, "gpt-4o", index=ImageIndex.open(path), table=TABLE) as att:
        assert att.prepared.max_bytes == 1 << 19 and att.pool._max_workers == 3
    none = load_config(None, {"images.path": str(path), "images.cache_mb": 0}).images
    with Attacher(none, "gpt-4o", index=ImageIndex.open(path), table=TABLE) as att:
        first, _ = att.frames({"id": "a", "image_ids": ["BN_IMG_0"]})
        again, _ = att.frames({"id": "b", "image_ids": ["BN_IMG_0"]})
        assert len(att.prepared) == 0 and again[0].part == first[0].part  # read again each time, the same text
        assert again[0].part["image_url"]["url"] is not first[0].part["image_url"]["url"]


def test_image_cache_and_thread_flags_run_and_bad_values_name_the_setting(scenes, server, capsys):
    item = items_of("SD")[0]
    stored = {i: base64.b64encode(png(40, 30, n)).decode() for n, i in enumerate(item["image_ids"])}
    (scenes / "SD.json").write_text(json.dumps(stored))
    base = ["--name", "SD", "--images", "SD.json", "--slice_end", "1", "--reply", "text"]
    code, out = run([*base, "--image_cache_mb", "0", "--image_threads", "1"], server)
    assert code == 0, out
    assert sent_urls(server) == ["data:image/png;base64," + stored[i] for i in item["image_ids"]]
    for flag, value, key in [("--image_cache_mb", "-1", "images.cache_mb"), ("--image_threads", "0", "images.threads"),
                             ("--image_threads", "9999", "images.threads")]:
        code, out = run([*base, flag, value], server)
        assert code == 2 and f"'{key}'" in out and value in out, out
    with pytest.raises(SystemExit) as exit_:  # not a number: argparse says so, naming the flag
        run([*base, "--image_threads", "two"], server)
    assert exit_.value.code == 2 and "--image_threads" in capsys.readouterr().err
    assert server.request_count == 1  # only the good run sent anything
