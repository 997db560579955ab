"""View: a release's pairs and images as a static web page, browsed offline from disk.

    syphus view DC_instructions.json --translations DC_instructions_zh.json --images DC.json
    syphus view DC_instructions.json SD_instructions.json --images DC.parquet --images SD.json --serve

writes ``DC_instructions_view/`` beside the first file (``--out`` to choose):

- ``index.html``: the whole viewer, CSS and JS inline; open it from disk (file://), no
  server, network, CDN or fetch() needed. Search (id or text, case-insensitive), filters
  by scene and language, 50 pairs a page. The URL hash holds the state, so a link such as
  ``index.html#q=dog&lang=zh&scene=DC&page=2`` opens that view.
- ``data/chunk-00000.js``, ...: the pairs, ``window.SYPHUS.push([...])`` with 2,000 entries a
  file (id, scene, language, instruction, answer, image_ids), loaded one after the other
  by script tags: page 1 shows as soon as the first chunk is in, so 10^5 pairs open quickly.
- ``data/images.js``: where an image file's name is not ``images/<id>.png``.
- ``images/<id>.png`` (or .jpg, .gif, .webp, .bmp by the bytes): only the referenced ids,
  decoded one at a time from the release image file. A referenced image absent from it
  shows as a visible placeholder naming its id.

Release files are streamed (``iter_members``); entries go to disk one by one, so memory
holds no more than one entry and the set of referenced image ids (16 bytes an id).

>>> r = build_view(["DC_instructions.json"], images=["DC.json"])   # doctest: +SKIP
>>> r.index                                                          # doctest: +SKIP
PosixPath('DC_instructions_view/index.html')

Imports: syphus.errors, syphus.idset, syphus.release.jsonstream, syphus.release.scenes.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import hashlib
import html
import http.server
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.release.jsonstream import iter_members, read_first
from syphus.release.scenes import scene_of_instruction

CHUNK_SIZE = 2000
PER_PAGE = 50
MARKER = "syphus-view"
PARQUET_HINT = "pip install 'syphus[parquet]' (pyarrow)"

_LANG_IN_NAME = re.compile(r"_instructions_(?P<lang>[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?)$")
_SCENE_IN_NAME = re.compile(r"(?P<scene>[A-Za-z0-9]+)_instructions(?:_|$)")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,150}")
_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,")


@dataclass
class ViewResult:
    out: Path
    index: Path
    pairs: int = 0
    chunks: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    scenes: dict[str, int] = field(default_factory=dict)
    images_referenced: int = 0
    images_written: int = 0
    images_missing: int = 0
    images_bad: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- inputs

def language_of(path: str | Path, default: str | None = None) -> str:
    """The language of an instructions file: ``XX_instructions_<lang>.json``, else ``meta.language``."""
    p = Path(path)
    m = _LANG_IN_NAME.search(p.stem)
    if m:
        return m["lang"]
    meta = _meta(p)
    lang = meta.get("language") if isinstance(meta, dict) else None
    if isinstance(lang, str) and lang.strip():
        return lang.strip()
    if default is not None:
        return default
    raise UserError(f"{p}: cannot tell the language of this translation; name the file "
                    f"XX_instructions_<lang>.json (e.g. DC_instructions_zh.json) or set meta.language")


def _meta(p: Path) -> Any:
    if not p.is_file():
        raise UserError(f"{p}: file not found")
    try:
        return read_first(p, "meta")
    except UnicodeDecodeError:
        raise UserError(f"{p}: not UTF-8 text; is this a release instructions file?") from None


def _scene_of_file(p: Path) -> str:
    m = _SCENE_IN_NAME.match(p.name)
    return m["scene"] if m else "?"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def iter_pairs(path: str | Path, language: str) -> Iterator[dict[str, Any]]:
    """The pairs of one instructions file as viewer entries, streamed."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: file not found")
    fallback = _scene_of_file(p)
    for ins_id, entry in iter_members(p, within="data"):
        if not isinstance(entry, dict):
            raise UserError(f"{p}: entry {ins_id!r} is not an object with instruction, answer and image_ids; "
                            f"check the file with: syphus validate {p}")
        image_ids = entry.get("image_ids") or []
        if not isinstance(image_ids, list):
            image_ids = [image_ids]
        yield {"id": str(ins_id), "scene": scene_of_instruction(str(ins_id)) or fallback, "language": language,
               "instruction": _text(entry.get("instruction")), "answer": _text(entry.get("answer")),
               "image_ids": [str(i) for i in image_ids]}


# ---------------------------------------------------------------- chunks

# Characters JSON may hold raw in its strings that a page may not: ``<`` (``</script>`` ends the
# element, ``<!--`` starts the parser's escaped script data), ``>`` and ``&`` (``-->``, ``]]>`` and
# entities, should the text ever be read as markup), and U+2028 / U+2029 (line ends to JavaScript
# engines before ES2019).
_JS_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                            "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _js(value: Any) -> str:
    """``value`` as JSON safe to embed in a page: inline in ``<script>`` or in a ``.js`` file.

    Still valid JSON (``json.loads`` gives ``value`` back): the unsafe characters appear only inside
    strings, and are written as ``\\u`` escapes there, so no text in a release can end the script.
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_JS_UNSAFE)


def chunk_name(i: int) -> str:
    return f"chunk-{i:05d}.js"


class ChunkWriter:
    """Writes entries straight to ``data/chunk-NNNNN.js`` files, ``size`` a file; holds none of them."""

    def __init__(self, folder: Path, size: int = CHUNK_SIZE):
        if size < 1:
            raise UserError(f"chunk size must be at least 1 (got {size})")
        self.folder, self.size = folder, size
        self.f: IO[str] | None = None
        self.n = 0  # entries in the open chunk
        self.chunks = 0
        self.total = 0

    def add(self, entry: dict[str, Any]) -> None:
        if self.f is None or self.n >= self.size:
            self._finish()
            self.f = (self.folder / chunk_name(self.chunks)).open("w", encoding="utf-8")
            self.f.write("window.SYPHUS.push([")
            self.chunks += 1
        self.f.write(("," if self.n else "") + "\n" + _js(entry))
        self.n += 1
        self.total += 1

    def _finish(self) -> None:
        if self.f is not None:
            self.f.write("\n]);\n")
            self.f.close()
            self.f, self.n = None, 0

    def close(self) -> None:
        self._finish()


# ---------------------------------------------------------------- images

def sniff_extension(data: bytes) -> str | None:
    """The file extension an image's bytes call for, or None if they are no known image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"BM"):
        return "bmp"
    return None


def decode_image(value: Any) -> bytes | None:
    """The bytes of one image value of a release image file (base64 text, raw bytes, {"bytes": ...})."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("base64")
    if isinstance(value, (bytes, bytearray)):
        if sniff_extension(bytes(value)):
            return bytes(value)
        value = bytes(value).decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = _DATA_URI.sub("", value.strip(), count=1)
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def _parquet_images(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{path}: reading Parquet needs pyarrow: {PARQUET_HINT}") from None
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    data_col = next((c for c in ("base64", "image", "bytes", "data") if c in names), None)
    if data_col is None:
        raise UserError(f"{path}: no image column (looked for 'base64', 'image', 'bytes' or 'data'); "
                        f"columns are {names}")
    id_col = next((c for c in ("id", "image_id", "__index_level_0__") if c in names), None)
    if id_col is None:
        others = [c for c in names if c != data_col]
        if not others:
            raise UserError(f"{path}: no id column (looked for 'id', 'image_id' or a pandas index); "
                            f"columns are {names}")
        id_col = others[0]
    for batch in pf.iter_batches(columns=[id_col, data_col], batch_size=64):
        ids, values = batch.column(0).to_pylist(), batch.column(1)
        for i, image_id in enumerate(ids):
            yield str(image_id), values[i].as_py()


def iter_image_file(path: str | Path) -> Iterator[tuple[str, Any]]:
    """``(image id, encoded image)`` for each image of ``XX.json`` or ``XX.parquet``, one at a time."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: image file not found; pass the release's XX.json or XX.parquet to --images")
    if p.suffix == ".parquet":
        yield from _parquet_images(p)
    else:
        yield from iter_members(p)


def image_file_name(image_id: str, ext: str = "png") -> str:
    """The name under ``images/`` of an image: ``<id>.<ext>``, or a hash for ids unsafe as file names."""
    if _SAFE_NAME.fullmatch(image_id):
        return f"{image_id}.{ext}"
    return f"x{hashlib.sha1(image_id.encode('utf-8')).hexdigest()[:20]}.{ext}"


def extract_images(image_files: Sequence[str | Path], wanted: IdSet, folder: Path,
                   result: ViewResult) -> dict[str, str]:
    """Write the wanted images into ``folder``; returns {id: file name} for names not ``<id>.png``."""
    written = IdSet()
    unusual: dict[str, str] = {}
    for path in image_files:
        for image_id, value in iter_image_file(path):
            if image_id not in wanted or image_id in written:
                continue
            data = decode_image(value)
            ext = sniff_extension(data) if data else None
            if data is None or ext is None:
                if len(result.images_bad) < 20:
                    result.images_bad.append(f"{path}: {image_id}")
                continue
            name = image_file_name(image_id, ext)
            (folder / name).write_bytes(data)
            written.add(image_id)
            if name != f"{image_id}.png":
                unusual[image_id] = name
    result.images_written = len(written)
    result.images_missing = len(wanted) - len(written)
    return unusual


# ---------------------------------------------------------------- output

def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        index = out / "index.html"
        ours = index.is_file() and MARKER in index.read_text(encoding="utf-8", errors="replace")[:2000]
        if not ours:
            raise UserError(f"{out}: folder is not empty and is not a syphus view; choose another --out "
                            f"or empty it")
        for old in (out / "data").glob("chunk-*.js"):
            old.unlink()
        for old in (out / "images").glob("*") if (out / "images").is_dir() else ():
            if old.is_file():
                old.unlink()
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)


def default_out(instructions: str | Path) -> Path:
    p = Path(instructions)
    return p.with_name(p.stem + "_view")


def build_view(instructions: Sequence[str | Path], translations: Sequence[str | Path] = (),
               images: Sequence[str | Path] = (), out: str | Path | None = None,
               chunk_size: int = CHUNK_SIZE, per_page: int = PER_PAGE) -> ViewResult:
    """Write the viewer folder for release instructions files (and translations, image files)."""
    if not instructions:
        raise UserError("no instructions file given: syphus view XX_instructions.json")
    inputs = [(Path(p), language_of(p, default="en")) for p in instructions]
    inputs += [(Path(p), language_of(p)) for p in translations]
    for p in [p for p, _ in inputs] + [Path(i) for i in images]:
        if not p.is_file():
            raise UserError(f"{p}: file not found")
    out_dir = Path(out) if out is not None else default_out(instructions[0])
    _prepare(out_dir)
    result = ViewResult(out=out_dir, index=out_dir / "index.html", sources=[p.name for p, _ in inputs])
    wanted = IdSet()
    writer = ChunkWriter(out_dir / "data", chunk_size)
    try:
        for path, lang in inputs:
            for entry in iter_pairs(path, lang):
                writer.add(entry)
                result.languages[lang] = result.languages.get(lang, 0) + 1
                result.scenes[entry["scene"]] = result.scenes.get(entry["scene"], 0) + 1
                for image_id in entry["image_ids"]:
                    wanted.add(image_id)
    finally:
        writer.close()
    result.pairs, result.chunks = writer.total, writer.chunks
    result.images_referenced = len(wanted)
    unusual: dict[str, str] = {}
    if images:
        unusual = extract_images(images, wanted, out_dir / "images", result)
    (out_dir / "data" / "images.js").write_text(f"window.SYPHUS_IMAGE_FILES = {_js(unusual)};\n", encoding="utf-8")
    config = {"chunks": result.chunks, "total": result.pairs, "per_page": per_page,
              "languages": result.languages, "scenes": result.scenes, "sources": result.sources,
              "images": bool(images), "image_sources": [Path(i).name for i in images]}
    result.index.write_text(render_index(config), encoding="utf-8")
    return result


_SLOT = re.compile(r"__(TITLE|CONFIG|MARKER)__")


def render_index(config: dict[str, Any]) -> str:
    """The text of ``index.html``: the page with its title, config and marker filled in.

    One pass over the page, so a slot name inside a filled-in value (a file called
    ``__CONFIG___instructions.json``) is left as it is.
    """
    title = "Syphus view: " + ", ".join(config.get("sources", [])[:3])
    values = {"TITLE": html.escape(title), "CONFIG": _js(config), "MARKER": MARKER}
    return _SLOT.sub(lambda m: values[m[1]], _INDEX)


# ---------------------------------------------------------------- serving

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def make_server(folder: str | Path, port: int = 0, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``folder`` on ``host:port`` (0: a free port); call ``serve_forever()``."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port, or 0 for a free one") \
            from None


# ---------------------------------------------------------------- command line

def _summary(r: ViewResult) -> str:
    langs = ", ".join(f"{k} {v:,}" for k, v in r.languages.items()) or "none"
    scenes = ", ".join(sorted(r.scenes)) or "none"
    lines = [f"wrote {r.pairs:,} pairs ({langs}; scenes {scenes}) in {r.chunks} chunk{'s' * (r.chunks != 1)} "
             f"to {r.out / 'data'}"]
    if r.images_referenced and not r.images_written and not r.images_missing:
        lines.append(f"images: {r.images_referenced:,} referenced; none extracted (no --images given, "
                     f"shown as placeholders)")
    elif r.images_referenced:
        lines.append(f"images: {r.images_written:,} of {r.images_referenced:,} referenced written to "
                     f"{r.out / 'images'}" + (f"; {r.images_missing:,} not found or unreadable "
                                              f"(shown as placeholders)" if r.images_missing else ""))
    for bad in r.images_bad:
        lines.append(f"  not an image (bad base64 or unknown format): {bad}")
    lines.append(f"open {r.index} in a browser (works offline from disk), or add --serve")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="syphus view",
        description="Browse release pairs and their images in a browser: writes a static folder "
                    "(index.html + data/ + images/) that works offline from disk.")
    p.add_argument("instructions", nargs="+", help="XX_instructions.json (several scenes: several files)")
    p.add_argument("--translations", nargs="+", action="extend", default=[], metavar="FILE",
                   help="XX_instructions_<lang>.json translation files (language from the name or meta.language)")
    p.add_argument("--images", action="append", default=[], metavar="FILE",
                   help="release image file XX.json or XX.parquet (repeat for several scenes)")
    p.add_argument("--out", help="output folder (default: <first instructions file's stem>_view beside it)")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help=argparse.SUPPRESS)
    p.add_argument("--per-page", type=int, default=PER_PAGE, help="pairs a page (default 50)")
    p.add_argument("--serve", action="store_true", help="then serve the folder on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=0, help="port for --serve (default 0: a free port)")
    return p


def view_main(argv: list[str], stream: TextIO) -> int:
    """``syphus view ...``: 0 done, 2 on a user error (printed as ``error: ...``)."""
    a = build_parser().parse_args(argv)
    try:
        if a.per_page < 1:
            raise UserError(f"--per-page must be at least 1 (got {a.per_page})")
        r = build_view(a.instructions, a.translations, a.images, a.out, chunk_size=a.chunk_size,
                       per_page=a.per_page)
        stream.write(_summary(r) + "\n")
        stream.flush()
        if a.serve:
            server = make_server(r.out, a.port)
            host, port = server.server_address[:2]
            stream.write(f"serving {r.out} at http://{host}:{port}/ (Ctrl-C to stop)\n")
            stream.flush()
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                stream.write("stopped\n")
            finally:
                server.server_close()
    except UserError as e:
        stream.write(f"error: {e}\n")
        return 2
    return 0


# ---------------------------------------------------------------- the page

_INDEX = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="__MARKER__">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
:root { --bg:#f6f7f9; --card:#fff; --fg:#1d2330; --muted:#667085; --line:#dde1e7; --accent:#2f6fed;
        --badge:#eef2fb; --miss:#fff4e5; --missfg:#9a5b00; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#15181e; --card:#1e222a; --fg:#e6e8ec; --muted:#9aa3b2; --line:#323844; --accent:#7aa5ff;
          --badge:#27303f; --miss:#3a2d17; --missfg:#f3c27a; } }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;
       background:var(--bg); color:var(--fg); }
header.top { position:sticky; top:0; z-index:2; background:var(--card); border-bottom:1px solid var(--line);
             padding:10px 18px; }
h1 { font-size:18px; margin:0 0 8px; }
h1 small { font-weight:normal; color:var(--muted); font-size:13px; margin-left:8px; }
.controls { display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
.controls input[type=search] { flex:1 1 280px; min-width:200px; }
input, select, button { font:inherit; padding:5px 9px; border:1px solid var(--line); border-radius:6px;
                        background:var(--card); color:var(--fg); }
button { cursor:pointer; }
button:disabled { opacity:.45; cursor:default; }
#pageno { width:5.5em; }
.status { color:var(--muted); font-size:13px; margin-top:6px; }
main { padding:14px 18px; max-width:1400px; margin:0 auto; }
.pair { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:10px 14px; margin:0 0 12px; }
.pair .meta { display:flex; gap:8px; align-items:center; font-size:13px; color:var(--muted); margin-bottom:8px; }
.pair .meta a.id { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; color:var(--accent); text-decoration:none; }
.badge { background:var(--badge); border-radius:999px; padding:1px 8px; color:var(--fg); }
.body { display:flex; gap:14px; align-items:flex-start; }
.thumbs { display:flex; flex-wrap:wrap; gap:6px; flex:0 1 auto; max-width:46%; }
.thumbs:empty { display:none; }
.thumbs img, .thumbs .missing { width:112px; height:112px; border-radius:6px; border:1px solid var(--line);
                                object-fit:cover; display:block; background:var(--bg); }
.thumbs img:hover { outline:2px solid var(--accent); }
.missing { background:var(--miss) !important; color:var(--missfg); font-size:11px; padding:6px; overflow:hidden;
           word-break:break-all; display:flex !important; flex-direction:column; justify-content:center;
           text-align:center; }
.missing b { font-size:12px; margin-bottom:3px; }
.text { flex:1 1 0; min-width:0; }
.text .label { font-size:11px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); }
.text p { margin:2px 0 10px; white-space:pre-wrap; overflow-wrap:anywhere; }
.text .ins p { font-weight:600; }
.empty { color:var(--muted); text-align:center; padding:40px; }
nav.pager { display:flex; justify-content:center; gap:8px; align-items:center; padding:4px 0 24px; }
@media (max-width: 700px) { .body { flex-direction:column; } .thumbs { max-width:100%; } }
</style>
</head>
<body>
<header class="top">
  <h1>Syphus view <small id="sources"></small></h1>
  <div class="controls">
    <input id="q" type="search" placeholder="Search id, instruction or answer…" autocomplete="off" aria-label="Search">
    <select id="scene" aria-label="Scene"><option value="">All scenes</option></select>
    <select id="lang" aria-label="Language"><option value="">All languages</option></select>
    <button id="prev" type="button" title="Previous page (←)">‹ Prev</button>
    <span>Page <input id="pageno" type="number" min="1" value="1" aria-label="Page"> of <span id="pages">1</span></span>
    <button id="next" type="button" title="Next page (→)">Next ›</button>
  </div>
  <div class="status" id="status">Loading…</div>
</header>
<main id="pairs"><p class="empty">Loading…</p></main>
<nav class="pager"><button id="prev2" type="button">‹ Prev</button><span id="pageinfo2"></span>
<button id="next2" type="button">Next ›</button></nav>
<script>window.SYPHUS_CONFIG = __CONFIG__;</script>
<script src="data/images.js"></script>
<script>
(function () {
  "use strict";
  var C = window.SYPHUS_CONFIG, PER = C.per_page || 50;
  var FILES = window.SYPHUS_IMAGE_FILES || {};
  var all = [], matches = [], chunksDone = 0, failed = [], loadedAll = C.chunks === 0;
  var state = {q: "", scene: "", lang: "", page: 1}, lastHash = null;
  function $(id) { return document.getElementById(id); }
  function fmt(n) { return n.toLocaleString("en-US"); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function wanted(e) {
    if (state.scene && e.scene !== state.scene) return false;
    if (state.lang && e.language !== state.lang) return false;
    return !state.q || e._h.indexOf(state.q) >= 0;
  }
  function pageCount() { return Math.max(1, Math.ceil(matches.length / PER)); }

  window.SYPHUS = {
    push: function (entries) {
      var before = matches.length, end = state.page * PER;
      for (var i = 0; i < entries.length; i++) {
        var e = entries[i];
        e._h = (e.id + "\n" + e.instruction + "\n" + e.answer).toLowerCase();
        all.push(e);
        if (wanted(e)) matches.push(e);
      }
      chunksDone++;
      if (before < end && matches.length > before) render(); else status();
    }
  };

  function placeholder(id, why) {
    var d = el("div", "missing");
    d.setAttribute("data-image-id", id);
    d.setAttribute("data-missing", "1");
    d.title = id + ": " + why;
    d.appendChild(el("b", null, why));
    d.appendChild(el("span", null, id));
    return d;
  }
  function thumb(id) {
    if (!C.images) return placeholder(id, "no image file");
    var src = "images/" + (FILES[id] || (encodeURIComponent(id) + ".png"));
    var a = el("a"); a.href = src; a.target = "_blank"; a.rel = "noopener";
    var img = new Image();
    img.loading = "lazy"; img.alt = id; img.title = id; img.decoding = "async";
    img.setAttribute("data-image-id", id);
    img.addEventListener("load", function () { img.setAttribute("data-loaded", "1"); });
    img.addEventListener("error", function () {
      if (a.parentNode) a.parentNode.replaceChild(placeholder(id, "missing image"), a);
    });
    img.src = src;
    a.appendChild(img);
    return a;
  }
  function card(e) {
    var art = el("article", "pair");
    art.setAttribute("data-id", e.id);
    art.setAttribute("data-lang", e.language);
    art.setAttribute("data-scene", e.scene);
    var meta = el("div", "meta");
    var link = el("a", "id", e.id); link.href = "#q=" + encodeURIComponent(e.id); link.title = "all languages of " + e.id;
    meta.appendChild(link);
    meta.appendChild(el("span", "badge", e.scene));
    meta.appendChild(el("span", "badge", e.language));
    meta.appendChild(el("span", null, e.image_ids.length + (e.image_ids.length === 1 ? " image" : " images")));
    art.appendChild(meta);
    var body = el("div", "body"), thumbs = el("div", "thumbs"), text = el("div", "text");
    for (var i = 0; i < e.image_ids.length; i++) thumbs.appendChild(thumb(e.image_ids[i]));
    var ins = el("div", "ins"), ans = el("div", "ans");
    ins.appendChild(el("div", "label", "Instruction"));
    var p1 = el("p", null, e.instruction); p1.dir = "auto"; ins.appendChild(p1);
    ans.appendChild(el("div", "label", "Answer"));
    var p2 = el("p", null, e.answer); p2.dir = "auto"; ans.appendChild(p2);
    text.appendChild(ins); text.appendChild(ans);
    body.appendChild(thumbs); body.appendChild(text);
    art.appendChild(body);
    return art;
  }
  function status() {
    var pages = pageCount(), from = (state.page - 1) * PER;
    var shown = Math.max(0, Math.min(matches.length, from + PER) - from);
    var s = shown ? "Showing " + fmt(from + 1) + "–" + fmt(from + shown) + " of " : "Showing 0 of ";
    s += fmt(matches.length) + " matching pairs · " + fmt(all.length) + " of " + fmt(C.total) + " pairs loaded";
    if (!loadedAll) s += " (chunk " + chunksDone + " of " + C.chunks + ", loading…)";
    if (failed.length) s += " · could not load " + failed.join(", ");
    $("status").textContent = s;
    $("pages").textContent = fmt(pages);
    $("pageno").value = state.page;
    $("pageno").max = pages;
    $("pageinfo2").textContent = "Page " + fmt(state.page) + " of " + fmt(pages);
    var atStart = state.page <= 1, atEnd = state.page >= pages;
    $("prev").disabled = $("prev2").disabled = atStart;
    $("next").disabled = $("next2").disabled = atEnd;
  }
  function render() {
    if (loadedAll && state.page > pageCount()) state.page = pageCount();
    var box = $("pairs"), from = (state.page - 1) * PER;
    var slice = matches.slice(from, from + PER), frag = document.createDocumentFragment();
    for (var i = 0; i < slice.length; i++) frag.appendChild(card(slice[i]));
    if (!slice.length) frag.appendChild(el("p", "empty", loadedAll ? "No pair matches." : "Loading…"));
    box.textContent = "";
    box.appendChild(frag);
    status();
  }
  function refilter() {
    matches = [];
    for (var i = 0; i < all.length; i++) if (wanted(all[i])) matches.push(all[i]);
  }
  function hashOf() {
    var parts = [];
    if (state.q) parts.push("q=" + encodeURIComponent($("q").value));
    if (state.scene) parts.push("scene=" + encodeURIComponent(state.scene));
    if (state.lang) parts.push("lang=" + encodeURIComponent(state.lang));
    if (state.page > 1) parts.push("page=" + state.page);
    return parts.join("&");
  }
  function writeHash() {
    var h = hashOf();
    lastHash = h;
    if (location.hash.replace(/^#/, "") === h) return;
    try { history.replaceState(null, "", "#" + h); } catch (err) { location.replace("#" + h); }
  }
  function readHash() {
    var h = location.hash.replace(/^#/, "");
    var v = {q: "", scene: "", lang: "", page: "1"};
    h.split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("="), k = i < 0 ? kv : kv.slice(0, i), val = i < 0 ? "" : kv.slice(i + 1);
      try { val = decodeURIComponent(val.replace(/\+/g, " ")); } catch (err) { /* keep as is */ }
      if (k in v) v[k] = val;
    });
    $("q").value = v.q;
    state.q = v.q.trim().toLowerCase();
    state.scene = v.scene; state.lang = v.lang;
    ensureOption("scene", v.scene); ensureOption("lang", v.lang);
    $("scene").value = v.scene; $("lang").value = v.lang;
    state.page = Math.max(1, parseInt(v.page, 10) || 1);
    lastHash = h;
  }
  function ensureOption(sel, value) {
    if (!value) return;
    var s = $(sel);
    for (var i = 0; i < s.options.length; i++) if (s.options[i].value === value) return;
    var o = el("option", null, value + " (0)"); o.value = value; s.appendChild(o);
  }
  function update(resetPage) {
    state.q = $("q").value.trim().toLowerCase();
    state.scene = $("scene").value; state.lang = $("lang").value;
    if (resetPage) state.page = 1;
    refilter(); writeHash(); render();
  }
  function go(page) {
    var p = Math.min(Math.max(1, page), pageCount());
    if (p === state.page) return;
    state.page = p; writeHash(); render(); window.scrollTo(0, 0);
  }
  function fillSelect(sel, counts, names) {
    Object.keys(counts).sort(function (a, b) {
      if (sel === "lang") { if (a === "en") return -1; if (b === "en") return 1; }
      return a < b ? -1 : a > b ? 1 : 0;
    }).forEach(function (k) {
      var o = el("option", null, (names[k] || k) + " (" + fmt(counts[k]) + ")"); o.value = k; $(sel).appendChild(o);
    });
  }
  var LANG = {en: "English", zh: "中文 zh", es: "Español es", ja: "日本語 ja", de: "Deutsch de", fr: "Français fr",
              ko: "한국어 ko", ar: "العربية ar"};
  fillSelect("scene", C.scenes, {});
  fillSelect("lang", C.languages, LANG);
  $("sources").textContent = C.sources.join(" · ") + (C.image_sources.length ? " · images: " + C.image_sources.join(", ") : "");
  var timer = null;
  $("q").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { update(true); }, 150); });
  $("scene").addEventListener("change", function () { update(true); });
  $("lang").addEventListener("change", function () { update(true); });
  $("prev").onclick = $("prev2").onclick = function () { go(state.page - 1); };
  $("next").onclick = $("next2").onclick = function () { go(state.page + 1); };
  $("pageno").addEventListener("change", function () { go(parseInt($("pageno").value, 10) || 1); });
  document.addEventListener("keydown", function (ev) {
    var t = ev.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === "ArrowLeft") go(state.page - 1);
    else if (ev.key === "ArrowRight") go(state.page + 1);
    else if (ev.key === "/") { ev.preventDefault(); $("q").focus(); }
  });
  window.addEventListener("hashchange", function () {
    if (location.hash.replace(/^#/, "") === lastHash) return;
    readHash(); refilter(); render();
  });
  function pad(i) { var s = String(i); while (s.length < 5) s = "0" + s; return s; }
  function load(i) {
    if (i >= C.chunks) {
      loadedAll = true;
      if ($("pairs").querySelector(".pair")) status(); else render();
      return;
    }
    var s = document.createElement("script");
    s.src = "data/chunk-" + pad(i) + ".js";
    s.onload = function () { setTimeout(function () { load(i + 1); }, 0); };
    s.onerror = function () { failed.push("chunk-" + pad(i) + ".js"); chunksDone++; load(i + 1); };
    document.body.appendChild(s);
  }
  readHash();
  render();
  load(0);
})();
</script>
</body>
</html>
"""
