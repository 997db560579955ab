"""syphus view: the static viewer folder, and the page itself rendered in headless Chromium.

The library (``syphus.release.view``) builds the folder from the page shipped as package data
(``syphus/release/viewer/``); the command line (``syphus.cli.view``) parses, reports and exits.

The browser tests need Debian's ``chromium`` (``apt-get install -y chromium``); without it they
are skipped, unless SYPHUS_REQUIRE_CHROMIUM=1 makes a missing browser a failure.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import urllib.parse
import urllib.request
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from syphus.cli.view import view_main
from syphus.release.view import build_view, make_server

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour, written with zlib and struct."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


EN = {
    "DC_INS_00001": {"instruction": "What is the dog doing?", "answer": "The dog chases a red ball.",
                     "image_ids": ["DC_IMG_v1_0000", "DC_IMG_v1_0001"], "rel_ins_ids": ["DC_INS_00002"]},
    "DC_INS_00002": {"instruction": "Which colour is the car?", "answer": "The car is blue.",
                     "image_ids": ["DC_IMG_v2_0000"], "rel_ins_ids": []},
    "DC_INS_00003": {"instruction": "Where does the cyclist go?", "answer": "Towards the bridge.",
                     "image_ids": ["DC_IMG_v3_0000"], "rel_ins_ids": []},  # its image is missing
}
ZH = {
    "DC_INS_00001": {"instruction": "狗在做什么？", "answer": "狗在追一个红球。",
                     "image_ids": ["DC_IMG_v1_0000", "DC_IMG_v1_0001"], "rel_ins_ids": ["DC_INS_00002"]},
    "DC_INS_00002": {"instruction": "汽车是什么颜色？", "answer": "汽车是蓝色的。",
                     "image_ids": ["DC_IMG_v2_0000"], "rel_ins_ids": []},
    "DC_INS_00003": {"instruction": "骑车人去哪里？", "answer": "去桥那边。",
                     "image_ids": ["DC_IMG_v3_0000"], "rel_ins_ids": []},
}
PRESENT = ["DC_IMG_v1_0000", "DC_IMG_v1_0001", "DC_IMG_v2_0000"]
MISSING = "DC_IMG_v3_0000"


@pytest.fixture
def release(tmp_path):
    meta = {"version": "0.0.1", "time": "2026-11-26", "author": "test"}
    (tmp_path / "DC_instructions.json").write_text(json.dumps({"meta": meta, "data": EN}), encoding="utf-8")
    (tmp_path / "DC_instructions_zh.json").write_text(
        json.dumps({"meta": {**meta, "language": "zh"}, "data": ZH}, ensure_ascii=False), encoding="utf-8")
    colours = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (200, 200, 0)]
    images = {image_id: b64(png(96, 96, colours[i])) for i, image_id in enumerate(PRESENT)}
    images["DC_IMG_unused_0000"] = b64(png(8, 8, colours[3]))  # not referenced: never extracted
    (tmp_path / "DC.json").write_text(json.dumps(images), encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One viewer folder, built once, shared by the browser tests."""
    folder = tmp_path_factory.mktemp("viewrel")
    # the release fixture's files, made by hand (module scope cannot use the function-scoped fixture)
    meta = {"version": "0.0.1"}
    (folder / "DC_instructions.json").write_text(json.dumps({"meta": meta, "data": EN}), encoding="utf-8")
    (folder / "DC_instructions_zh.json").write_text(json.dumps({"meta": meta, "data": ZH}, ensure_ascii=False),
                                                    encoding="utf-8")
    colours = [(220, 40, 40), (40, 160, 60), (40, 80, 220)]
    (folder / "DC.json").write_text(json.dumps({i: b64(png(96, 96, c)) for i, c in zip(PRESENT, colours)}),
                                    encoding="utf-8")
    out = io.StringIO()
    code = view_main([str(folder / "DC_instructions.json"), "--translations", str(folder / "DC_instructions_zh.json"),
                      "--images", str(folder / "DC.json")], out)
    assert code == 0, out.getvalue()
    return folder / "DC_instructions_view"


# ---------------------------------------------------------------- without a browser

def test_writes_folder_and_only_referenced_images(release):
    out = io.StringIO()
    code = view_main([str(release / "DC_instructions.json"), "--translations", str(release / "DC_instructions_zh.json"),
                      "--images", str(release / "DC.json"), "--out", str(release / "v")], out)
    assert code == 0, out.getvalue()
    v = release / "v"
    assert (v / "index.html").is_file() and (v / "data" / "chunk-00000.js").is_file()
    assert sorted(p.name for p in (v / "images").iterdir()) == sorted(f"{i}.png" for i in PRESENT)
    assert (v / "images" / "DC_IMG_v1_0000.png").read_bytes().startswith(b"\x89PNG")
    text = (v / "data" / "chunk-00000.js").read_text(encoding="utf-8")
    assert text.startswith("window.SYPHUS.push([") and text.rstrip().endswith("]);")
    entries = json.loads(text.strip()[len("window.SYPHUS.push("):-2])
    assert len(entries) == 6
    assert {(e["id"], e["language"]) for e in entries} == {(i, lang) for i in EN for lang in ("en", "zh")}
    assert entries[0] == {"id": "DC_INS_00001", "scene": "DC", "language": "en",
                          "instruction": EN["DC_INS_00001"]["instruction"], "answer": EN["DC_INS_00001"]["answer"],
                          "image_ids": EN["DC_INS_00001"]["image_ids"]}
    page = (v / "index.html").read_text(encoding="utf-8")
    assert "<script src=\"data/images.js\">" in page and "http://" not in page and "https://" not in page
    assert "fetch(" not in page
    report = out.getvalue()
    assert "wrote 6 pairs" in report and "3 of 4 referenced" in report and "1 not found" in report


def test_chunks_of_2000(tmp_path):
    data = {f"SD_INS_{n:05d}": {"instruction": f"question {n}", "answer": f"answer {n}",
                                "image_ids": [f"SD_IMG_{n:05d}_1"], "rel_ins_ids": []} for n in range(5000)}
    src = tmp_path / "SD_instructions.json"
    src.write_text(json.dumps({"meta": {}, "data": data}), encoding="utf-8")
    r = build_view([src])
    assert r.out == tmp_path / "SD_instructions_view"
    assert r.chunks == 3 and r.pairs == 5000 and r.images_referenced == 5000 and r.images_written == 0
    sizes = []
    for i in range(3):
        text = (r.out / "data" / f"chunk-{i:05d}.js").read_text(encoding="utf-8")
        sizes.append(len(json.loads(text.strip()[len("window.SYPHUS.push("):-2])))
    assert sizes == [2000, 2000, 1000]
    assert not (r.out / "data" / "chunk-00003.js").exists()
    config = json.loads(re.search(r"window\.SYPHUS_CONFIG = (.*?);</script>", r.index.read_text()).group(1))
    assert config["chunks"] == 3 and config["total"] == 5000 and config["scenes"] == {"SD": 5000}
    # a rebuild with fewer pairs leaves no stale chunk behind
    src.write_text(json.dumps({"meta": {}, "data": dict(list(data.items())[:10])}), encoding="utf-8")
    assert build_view([src]).chunks == 1
    assert sorted(p.name for p in (r.out / "data").glob("chunk-*.js")) == ["chunk-00000.js"]


def test_language_from_meta_and_sniffed_extension(tmp_path):
    (tmp_path / "LA_instructions.json").write_text(json.dumps({"meta": {}, "data": {
        "LA_INS_00001": {"instruction": "q", "answer": "a", "image_ids": ["LA_IMG_000000000001"]}}}))
    (tmp_path / "LA_translated.json").write_text(json.dumps({"meta": {"language": "de"}, "data": {
        "LA_INS_00001": {"instruction": "Frage", "answer": "Antwort", "image_ids": ["LA_IMG_000000000001"]}}}))
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 20
    (tmp_path / "LA.json").write_text(json.dumps({"LA_IMG_000000000001": "data:image/jpeg;base64," + b64(jpeg)}))
    r = build_view([tmp_path / "LA_instructions.json"], [tmp_path / "LA_translated.json"], [tmp_path / "LA.json"])
    assert r.languages == {"en": 1, "de": 1}
    assert (r.out / "images" / "LA_IMG_000000000001.jpg").read_bytes() == jpeg
    assert '"LA_IMG_000000000001":"LA_IMG_000000000001.jpg"' in (r.out / "data" / "images.js").read_text()


def test_user_errors(tmp_path):
    out = io.StringIO()
    assert view_main([str(tmp_path / "nope_instructions.json")], out) == 2
    assert out.getvalue().startswith("error: ") and "nope_instructions.json" in out.getvalue()
    (tmp_path / "DC_instructions.json").write_text(json.dumps({"meta": {}, "data": EN}))
    (tmp_path / "extra.json").write_text(json.dumps({"meta": {}, "data": ZH}))
    out = io.StringIO()
    assert view_main([str(tmp_path / "DC_instructions.json"), "--translations", str(tmp_path / "extra.json")], out) == 2
    assert "extra.json" in out.getvalue() and "meta.language" in out.getvalue()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    out = io.StringIO()
    assert view_main([str(tmp_path / "DC_instructions.json"), "--out", str(busy)], out) == 2
    assert "not a syphus view" in out.getvalue() and (busy / "notes.txt").exists()


def test_parquet_images(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "DC_instructions.json").write_text(json.dumps({"meta": {}, "data": EN}))
    table = pa.table({"id": PRESENT + ["DC_IMG_other_0000"],
                      "base64": [b64(png(4, 4, (i * 50, 0, 0))) for i in range(4)]})
    pq.write_table(table, tmp_path / "DC.parquet")
    r = build_view([tmp_path / "DC_instructions.json"], images=[tmp_path / "DC.parquet"])
    assert r.images_written == 3 and r.images_missing == 1
    assert sorted(p.name for p in (r.out / "images").iterdir()) == sorted(f"{i}.png" for i in PRESENT)


def test_serve(built):
    server = make_server(built, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as resp:
            assert b"SYPHUS_CONFIG" in resp.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/images/DC_IMG_v1_0000.png", timeout=5) as resp:
            assert resp.read().startswith(b"\x89PNG")
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- in headless Chromium

def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("SYPHUS_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium not found, and SYPHUS_REQUIRE_CHROMIUM=1 (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return path


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def _dump(tmp_path: Path, url: str) -> str:
    proc = _run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    assert "</html>" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def _pairs(dom: str) -> list[tuple[str, str]]:
    return re.findall(r'<article class="pair" data-id="([^"]+)" data-lang="([^"]+)"', dom)


def test_page_renders_pairs_and_images(built, tmp_path):
    dom = _dump(tmp_path, built.joinpath("index.html").as_uri())
    assert sorted(_pairs(dom)) == sorted((i, lang) for i in EN for lang in ("en", "zh"))
    text = html.unescape(dom)
    for entries in (EN, ZH):
        for entry in entries.values():
            assert entry["instruction"] in text and entry["answer"] in text
    for image_id in PRESENT:
        tags = re.findall(rf'<img [^>]*data-image-id="{image_id}"[^>]*>', dom)
        assert len(tags) == 2, f"{image_id} should show in en and zh: {tags}"
        assert all('data-loaded="1"' in t for t in tags), tags
    assert f'data-image-id="{MISSING}"' in dom
    assert not re.search(rf'<img [^>]*data-image-id="{MISSING}"', dom), "the missing image should be a placeholder"
    assert len(re.findall(rf'<div class="missing" data-image-id="{MISSING}" data-missing="1"', dom)) == 2
    assert "6 matching pairs" in text


def test_screenshot(built, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _run_chromium(tmp_path, "--virtual-time-budget=5000", f"--screenshot={shot}", "--window-size=1200,900",
                         built.joinpath("index.html").as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_hash_filters(built, tmp_path):
    uri = built.joinpath("index.html").as_uri()
    dom = _dump(tmp_path, uri + "#lang=zh")
    assert sorted(_pairs(dom)) == sorted((i, "zh") for i in ZH)
    assert "狗在追一个红球" in dom and "The dog chases" not in dom
    dom = _dump(tmp_path, uri + "#q=" + urllib.parse.quote("BLUE"))  # case-insensitive, on the answer text
    assert _pairs(dom) == [("DC_INS_00002", "en")]
    dom = _dump(tmp_path, uri + "#q=dc_ins_00003")  # an id: every language of the pair
    assert sorted(_pairs(dom)) == [("DC_INS_00003", "en"), ("DC_INS_00003", "zh")]
    dom = _dump(tmp_path, uri + "#q=nothing-matches-this")
    assert _pairs(dom) == [] and "No pair matches." in dom


def test_paging_across_chunks(tmp_path):
    _chromium()
    data = {f"SD_INS_{n:05d}": {"instruction": f"question {n}", "answer": f"answer {n}", "image_ids": []}
            for n in range(120)}
    src = tmp_path / "SD_instructions.json"
    src.write_text(json.dumps({"meta": {}, "data": data}), encoding="utf-8")
    r = build_view([src], chunk_size=50)
    assert r.chunks == 3
    dom = _dump(tmp_path, r.index.as_uri())
    assert [i for i, _ in _pairs(dom)] == [f"SD_INS_{n:05d}" for n in range(50)]
    assert "120 of 120 pairs loaded" in html.unescape(dom) and '<span id="pages">3</span>' in dom
    dom = _dump(tmp_path, r.index.as_uri() + "#page=3")
    assert [i for i, _ in _pairs(dom)] == [f"SD_INS_{n:05d}" for n in range(100, 120)]
    assert "Showing 101–120 of 120 matching pairs" in html.unescape(dom)


# ---------------------------------------------------------------- hostile text in the data

HOSTILE = ("</script><script>alert(1)</script>"
           "<script>document.documentElement.setAttribute('data-pwned', '1')</script>"
           " <!-- <script> &amp; line\u2028separator\u2029paragraph --> ]]>")
HOSTILE_LANG = "x</script><!--<script>&amp;\u2028\u2029y"  # from meta.language: a config key and a filter
HOSTILE_ID = "DC_INS_</script><!--&amp;\u2028"          # a pair id not in the DC_INS_nnnnn form
HOSTILE_IMAGE = "DC_IMG_</script><!--<script>&amp;\u2029"  # its file is named by hash: images.js maps it
HOSTILE_FILE = "DC <!--<b>&amp;\u2028\u2029_instructions.json"  # a source name: in the title and config
UNSAFE_IN_SCRIPT = ["<", ">", "&", "\u2028", "\u2029"]


def _script_json(text: str, prefix: str, suffix: str) -> str:
    """The JSON between ``prefix`` and ``suffix`` in a script's text, checked to hold nothing a page may not."""
    start, end = text.index(prefix) + len(prefix), text.rindex(suffix)
    block = text[start:end]
    for raw in UNSAFE_IN_SCRIPT:
        assert raw not in block, f"{raw!r} unescaped in {block[:200]!r}"
    return block


@pytest.fixture
def hostile(tmp_path):
    """A release whose ids, texts, image id, language and file name all hold script-breaking text."""
    en = {"DC_INS_00001": {"instruction": HOSTILE, "answer": "A: " + HOSTILE, "image_ids": [HOSTILE_IMAGE]},
          HOSTILE_ID: {"instruction": "plain question", "answer": "plain answer", "image_ids": []}}
    other = {k: {**v, "instruction": "T: " + v["instruction"]} for k, v in en.items()}
    (tmp_path / HOSTILE_FILE).write_text(json.dumps({"meta": {"note": HOSTILE}, "data": en}), encoding="utf-8")
    (tmp_path / "DC_translation.json").write_text(
        json.dumps({"meta": {"language": HOSTILE_LANG}, "data": other}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "DC.json").write_text(json.dumps({HOSTILE_IMAGE: b64(png(16, 16, (10, 120, 200)))}), encoding="utf-8")
    r = build_view([tmp_path / HOSTILE_FILE], [tmp_path / "DC_translation.json"], [tmp_path / "DC.json"],
                   out=tmp_path / "view")
    return r, en, other


def test_inline_config_survives_hostile_metadata(hostile):
    r, en, other = hostile
    page = r.index.read_text(encoding="utf-8")
    # the page holds its own three scripts and no more: nothing in the data opened or closed one
    assert page.count("<script") == 3 and page.count("</script>") == 3 and "<!--" not in page
    config = json.loads(_script_json(page, "<script>window.SYPHUS_CONFIG = ", ";</script>"))
    assert config["sources"] == [HOSTILE_FILE, "DC_translation.json"]
    assert config["languages"] == {"en": 2, HOSTILE_LANG: 2}
    assert config["scenes"] == {"DC": 2, "?": 2} and config["image_sources"] == ["DC.json"]
    assert f"<title>{html.escape('Syphus view: ' + HOSTILE_FILE + ', DC_translation.json')}</title>" in page
    chunk = (r.out / "data" / "chunk-00000.js").read_text(encoding="utf-8")
    entries = json.loads(_script_json(chunk, "window.SYPHUS.push(", ");"))
    assert [(e["id"], e["language"], e["instruction"], e["answer"], e["image_ids"]) for e in entries] == [
        (k, lang, v["instruction"], v["answer"], v["image_ids"])
        for lang, data in (("en", en), (HOSTILE_LANG, other)) for k, v in data.items()]
    files = json.loads(_script_json((r.out / "data" / "images.js").read_text(encoding="utf-8"),
                                    "window.SYPHUS_IMAGE_FILES = ", ";"))
    assert list(files) == [HOSTILE_IMAGE] and (r.out / "images" / files[HOSTILE_IMAGE]).is_file()


def test_render_index_fills_each_slot_once():
    from syphus.release.view import render_index
    page = render_index({"sources": ["__CONFIG__ __MARKER___instructions.json"], "chunks": 0})
    assert "<title>Syphus view: __CONFIG__ __MARKER___instructions.json</title>" in page
    assert page.count("syphus-view") == 1  # the generator marker, not the source name


class _Dom(HTMLParser):
    """A dumped page, read back: its script elements, the root's attributes, each tag's texts and attributes."""

    def __init__(self, dom: str):
        super().__init__(convert_charrefs=True)
        self.scripts: list[list] = []  # [attributes, text]
        self.root: dict[str, str | None] = {}
        self.texts: dict[str, list[str]] = {}
        self.attrs: dict[str, list[dict[str, str | None]]] = {}
        self._tag: str | None = None
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        self.attrs.setdefault(tag, []).append(dict(attrs))
        if tag == "html":
            self.root = dict(attrs)
        elif tag == "script":
            self.scripts.append([dict(attrs), ""])

    def handle_endtag(self, tag):
        self._tag = None

    def handle_data(self, data):
        if self._tag == "script":
            self.scripts[-1][1] += data
        elif self._tag is not None:
            self.texts.setdefault(self._tag, []).append(data)


def test_hostile_text_shows_as_text_in_the_browser(hostile, tmp_path):
    r, en, other = hostile
    dom = _Dom(_dump(tmp_path, r.index.as_uri()))
    assert "data-pwned" not in dom.root, "text from the data ran as a script"
    inline = [text for attrs, text in dom.scripts if "src" not in attrs]
    assert len(inline) == 2 and inline[0].startswith("window.SYPHUS_CONFIG = ")  # the config and the viewer
    assert all(attrs["src"].startswith("data/") for attrs, _ in dom.scripts if "src" in attrs)
    assert sorted(a["data-id"] for a in dom.attrs.get("article", [])) == sorted([*en, *other])
    shown = dom.texts["p"]
    for data in (en, other):
        for entry in data.values():
            assert entry["instruction"] in shown and entry["answer"] in shown
    assert f"{HOSTILE_LANG} (2)" in dom.texts["option"]
    assert dom.texts["small"] == [f"{HOSTILE_FILE} · DC_translation.json · images: DC.json"]
    images = [a for a in dom.attrs.get("img", []) if a.get("data-image-id") == HOSTILE_IMAGE]
    assert len(images) == 2 and all(a.get("data-loaded") == "1" and a["alt"] == HOSTILE_IMAGE for a in images)
    assert any("4 matching pairs" in t for t in dom.texts["div"])


# ---------------------------------------------------------------- the page as files; only the CLI speaks

def test_page_is_package_data_inlined_in_one_pass():
    from importlib.resources import files

    from syphus.release.view import page_files, render_index
    folder = files("syphus.release") / "viewer"
    css = (folder / "viewer.css").read_text(encoding="utf-8")
    js = (folder / "viewer.js").read_text(encoding="utf-8")
    assert (folder / "index.html").is_file() and set(page_files()) == {"index.html", "viewer.css", "viewer.js"}
    page = render_index({"sources": ["__STYLE__ __SCRIPT___instructions.json"], "chunks": 0})
    assert css.strip() in page and js.strip() in page  # inlined as shipped, not linked
    assert page.count(css.strip()) == 1 and page.count(js.strip()) == 1
    assert "<title>Syphus view: __STYLE__ __SCRIPT___instructions.json</title>" in page
    assert not re.search(r"__(TITLE|CONFIG|MARKER|STYLE|SCRIPT)__", page.replace("__STYLE__ __SCRIPT___", ""))


def test_library_neither_prints_nor_exits(release, capsys, caplog):
    import ast
    import logging

    import syphus.release.view as lib
    tree = ast.parse(Path(lib.__file__).read_text(encoding="utf-8"))
    called = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not called & {"print", "sys.exit", "exit", "quit"} and not imported & {"argparse", "sys"}
    assert not hasattr(lib, "view_main") and not hasattr(lib, "build_parser")
    with caplog.at_level(logging.DEBUG, logger="syphus"):
        r = build_view([release / "DC_instructions.json"], images=[release / "DC.json"], out=release / "v")
    assert r.images_written == 3 and capsys.readouterr() == ("", "")
    assert any("view:" in m for m in caplog.messages)
    with pytest.raises(lib.UserError, match="per-page"):
        build_view([release / "DC_instructions.json"], per_page=0, out=release / "w")
    assert not (release / "w").exists()  # refused before anything was written


def test_cli_dispatch_and_flags(release):
    from syphus.cli import main
    out = io.StringIO()
    code = main(["view", str(release / "DC_instructions.json"), "--images", str(release / "DC.json"),
                 "--out", str(release / "v"), "--per-page", "7"], env={}, stream=out)
    assert code == 0, out.getvalue()
    assert "wrote 3 pairs (en 3; scenes DC)" in out.getvalue() and "3 of 4 referenced" in out.getvalue()
    page = (release / "v" / "index.html").read_text(encoding="utf-8")
    assert json.loads(re.search(r"window\.SYPHUS_CONFIG = (.*?);</script>", page).group(1))["per_page"] == 7
    out = io.StringIO()
    assert main(["view", str(release / "DC_instructions.json"), "--per-page", "0"], env={}, stream=out) == 2
    assert out.getvalue() == "error: --per-page must be at least 1 (got 0)\n"


def test_shipped_page_is_checked_when_loaded(tmp_path, monkeypatch):
    import syphus.release.view as lib
    real = lib.files("syphus.release") / "viewer"
    folder = tmp_path / "viewer"
    folder.mkdir()
    for name in lib.PAGE_FILES:
        (folder / name).write_text((real / name).read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(lib, "files", lambda package: tmp_path)
    lib.page_files.cache_clear()
    try:
        assert lib.page_files()["viewer.js"] == (real / "viewer.js").read_text(encoding="utf-8").rstrip("\n")
        lib.page_files.cache_clear()
        (folder / "viewer.js").write_text('var s = "</SCRIPT>";\n', encoding="utf-8")
        with pytest.raises(RuntimeError, match="viewer.js"):
            lib.page_files()
        (folder / "viewer.js").unlink()
        with pytest.raises(lib.UserError, match="reinstall"):
            lib.page_files()
    finally:
        lib.page_files.cache_clear()


def _get(port: int, host_header: str | None) -> tuple[int, bytes]:
    """A GET of /index.html over a raw socket, with this ``Host:`` header (None: none at all)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head = "GET /index.html HTTP/1.1\r\n" + (f"Host: {host_header}\r\n" if host_header is not None else "")
        sock.sendall((head + "Connection: close\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def test_dns_rebinding_the_viewer_answers_only_its_own_host_names(built):
    server = make_server(built, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
            status, body = _get(port, host)
            assert status == 200 and b"SYPHUS_CONFIG" in body, host
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", "localhost",
                     f"localhost:{port + 1}", "", None):
            status, body = _get(port, host)
            assert status == 403 and b"SYPHUS_CONFIG" not in body, host
    finally:
        server.shutdown()
        server.server_close()
