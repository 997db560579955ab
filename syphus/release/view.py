"""View: a release's pairs and images as a static web page, browsed offline from disk.

The library behind ``syphus view`` (the command line is ``syphus.cli.view``): it returns a
``ViewResult`` or raises ``UserError``, and logs through ``logging.getLogger("syphus")``.
``build_view`` writes ``DC_instructions_view/`` beside the first file (``out`` to choose):

- ``index.html``: the whole viewer, CSS and JS inline; open it from disk (file://), no
  server, network, CDN or fetch() needed. The page is the package data ``viewer/index.html``,
  ``viewer/viewer.css`` and ``viewer/viewer.js`` (inlined); Python fills in only the title,
  the marker and the inline config (``render_index``). Search (id or text, case-insensitive), filters
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

>>> import json, shutil, tempfile
>>> tmp = Path(tempfile.mkdtemp())
>>> pair = {"instruction": "What is the dog doing?", "answer": "It chases a ball.", "image_ids": ["DC_IMG_v1_0000"]}
>>> _ = (tmp / "DC_instructions.json").write_text(json.dumps({"meta": {}, "data": {"DC_INS_00001": pair}}))
>>> r = build_view([tmp / "DC_instructions.json"])
>>> r.index.relative_to(tmp).as_posix()
'DC_instructions_view/index.html'
>>> r.pairs, r.chunks, r.languages, r.scenes, r.images_referenced, r.images_written
(1, 1, {'en': 1}, {'DC': 1}, 1, 0)
>>> sorted(p.name for p in (r.out / "data").iterdir())
['chunk-00000.js', 'images.js']
>>> shutil.rmtree(tmp)
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import IO, Any

from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.image import image_bytes, sniff_extension
from syphus.release.images import image_items
from syphus.release.jsonstream import iter_members, read_first
from syphus.release.origins import Origins, pair_text
from syphus.engine.scenes import scene_of_instruction
from syphus.release.viewserver import make_server  # noqa: F401  (imported from here by the CLI and tests)

log = logging.getLogger("syphus")

CHUNK_SIZE = 2000
PER_PAGE = 50
MARKER = "syphus-view"

_LANG_IN_NAME = re.compile(r"_instructions_(?P<lang>[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?)$")
_SCENE_IN_NAME = re.compile(r"(?P<scene>[A-Za-z0-9]+)_instructions(?:_|$)")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,150}")


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
    annotated: int = 0  # pairs shown with the annotation their query was made from
    annotation_notes: list[str] = field(default_factory=list)  # where annotations came from, or why none


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


def iter_pairs(path: str | Path, language: str, origins: Origins | None = None,
               english: bool = True) -> Iterator[dict[str, Any]]:
    """The pairs of one instructions file as viewer entries, streamed (with ``origins``: each pair's
    ``source``, the query and annotation it was made from, where known)."""
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
        out = {"id": str(ins_id), "scene": scene_of_instruction(str(ins_id)) or fallback, "language": language,
               "instruction": pair_text(entry.get("instruction")), "answer": pair_text(entry.get("answer")),
               "image_ids": [str(i) for i in image_ids]}
        origin = origins.of(p, str(ins_id), entry, english) if origins is not None else None
        if origin:
            out["source"] = origin
        yield out


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

    >>> print(_js({"id": "</script><!--", "text": "a & b\\u2028"}))
    {"id":"\\u003c/script\\u003e\\u003c!--","text":"a \\u0026 b\\u2028"}
    >>> json.loads(_js(["</script>"]))
    ['</script>']
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

def iter_image_file(path: str | Path) -> Iterator[tuple[str, Any]]:
    """``(image id, encoded image)`` for each image of ``XX.json`` or ``XX.parquet``, one at a time."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: image file not found; pass the release's XX.json or XX.parquet to --images")
    yield from image_items(p)


def image_file_name(image_id: str, ext: str = "png") -> str:
    """The name under ``images/`` of an image: ``<id>.<ext>``, or a hash for ids unsafe as file names.

    >>> image_file_name("DC_IMG_v1_0000"), image_file_name("../etc/passwd", "jpg")
    ('DC_IMG_v1_0000.png', 'xe96c47eabf3d85aeea0d.jpg')
    """
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
            try:
                data = image_bytes(value)
            except ValueError:
                data = None
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
               chunk_size: int = CHUNK_SIZE, per_page: int = PER_PAGE, group: str | None = None) -> ViewResult:
    """Write the viewer folder for release instructions files (and translations, image files).

    ``group="query"`` shows each query once, its annotation and every input's pairs for it side by side
    (the cold start's candidates: one "language" each)."""
    if not instructions:
        raise UserError("no instructions file given: syphus view XX_instructions.json")
    if per_page < 1:
        raise UserError(f"--per-page must be at least 1 (got {per_page})")
    if chunk_size < 1:
        raise UserError(f"chunk size must be at least 1 (got {chunk_size})")
    page_files()  # a page missing from the install stops us before anything is written
    inputs = [(Path(p), language_of(p, default="en"), True) for p in instructions]
    inputs += [(Path(p), language_of(p), False) for p in translations]
    for p in [p for p, _, _ in inputs] + [Path(i) for i in images]:
        if not p.is_file():
            raise UserError(f"{p}: file not found")
    out_dir = Path(out) if out is not None else default_out(instructions[0])
    _prepare(out_dir)
    result = ViewResult(out=out_dir, index=out_dir / "index.html", sources=[p.name for p, _, _ in inputs])
    wanted = IdSet()
    writer = ChunkWriter(out_dir / "data", chunk_size)
    origins = Origins()
    try:
        for path, lang, english in inputs:
            log.debug("view: reading %s (language %s)", path, lang)
            for entry in iter_pairs(path, lang, origins, english):
                writer.add(entry)
                result.annotated += "annotation" in entry.get("source", {})
                result.languages[lang] = result.languages.get(lang, 0) + 1
                result.scenes[entry["scene"]] = result.scenes.get(entry["scene"], 0) + 1
                for image_id in entry["image_ids"]:
                    wanted.add(image_id)
    finally:
        writer.close()
        origins.close()
    result.annotation_notes = origins.notes
    result.pairs, result.chunks = writer.total, writer.chunks
    result.images_referenced = len(wanted)
    unusual: dict[str, str] = {}
    if images:
        unusual = extract_images(images, wanted, out_dir / "images", result)
        log.debug("view: %d of %d referenced images written to %s", result.images_written,
                  result.images_referenced, out_dir / "images")
    (out_dir / "data" / "images.js").write_text(f"window.SYPHUS_IMAGE_FILES = {_js(unusual)};\n", encoding="utf-8")
    config = {"chunks": result.chunks, "total": result.pairs, "per_page": per_page, "group": group,
              "languages": result.languages, "scenes": result.scenes, "sources": result.sources,
              "images": bool(images), "image_sources": [Path(i).name for i in images]}
    result.index.write_text(render_index(config), encoding="utf-8")
    log.debug("view: %d pairs in %d chunks, page %s", result.pairs, result.chunks, result.index)
    return result


# ---------------------------------------------------------------- the page

PAGE = "viewer"  # the page's folder of package data, beside this module
PAGE_FILES = ("index.html", "viewer.css", "viewer.js")
_SLOT = re.compile(r"__(TITLE|CONFIG|MARKER|STYLE|SCRIPT)__")
# What a shipped file may not hold, as it is inlined into index.html: the end of its element, or
# ``<!--`` and ``<script`` (which together switch a script into double-escaped data); no page
# holds a comment at all, and the page's three script elements are the template's.
_NOT_IN = {"index.html": ("<!--",), "viewer.css": ("</style", "<!--"),
           "viewer.js": ("</script", "<script", "<!--")}


@functools.cache
def page_files() -> dict[str, str]:
    """The viewer's page as shipped: the ``index.html`` template and the CSS and JS it inlines.

    Read once with ``importlib.resources`` from the package data ``syphus/release/viewer/``.

    >>> sorted(page_files())
    ['index.html', 'viewer.css', 'viewer.js']
    >>> sorted(set(_SLOT.findall(page_files()["index.html"])))
    ['CONFIG', 'MARKER', 'SCRIPT', 'STYLE', 'TITLE']
    """
    folder = files("syphus.release") / PAGE
    texts = {}
    for name in PAGE_FILES:
        try:
            text = (folder / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"syphus is installed without its viewer page ({PAGE}/{name} in the syphus.release "
                            f"package); reinstall syphus") from None
        bad = [s for s in _NOT_IN[name] if s in text.lower()]
        if bad:
            raise RuntimeError(f"{PAGE}/{name} holds {bad[0]!r}; inlined into index.html it would break the page")
        # the template puts the CSS and JS slots on lines of their own
        texts[name] = text if name == "index.html" else text.rstrip("\n")
    slots = _SLOT.findall(texts["index.html"])
    if sorted(slots) != ["CONFIG", "MARKER", "SCRIPT", "STYLE", "TITLE"]:
        raise RuntimeError(f"{PAGE}/index.html must hold each slot once; it holds {slots}")
    return texts


def render_index(config: dict[str, Any]) -> str:
    """The text of ``index.html``: the page with its title, config, marker, CSS and JS filled in.

    One pass over the template, so a slot name inside a filled-in value (a file called
    ``__CONFIG___instructions.json``) is left as it is.

    >>> page = render_index({"sources": ["__CONFIG___instructions.json"], "chunks": 0})
    >>> "<title>Syphus view: __CONFIG___instructions.json</title>" in page
    True
    >>> page.count("<script"), page.count(MARKER)
    (3, 1)
    """
    page = page_files()
    title = "Syphus view: " + ", ".join(config.get("sources", [])[:3])
    values = {"TITLE": html.escape(title), "CONFIG": _js(config), "MARKER": MARKER,
              "STYLE": page["viewer.css"], "SCRIPT": page["viewer.js"]}
    return _SLOT.sub(lambda m: values[m[1]], page["index.html"])
