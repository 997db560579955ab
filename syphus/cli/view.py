"""``syphus view``: flags, the report and the exit code around ``syphus.release.view``.

    syphus view DC_instructions.json --translations DC_instructions_zh.json --images DC.json
    syphus view DC_instructions.json SD_instructions.json --images DC.parquet --images SD.json --serve

writes ``DC_instructions_view/`` beside the first file (``--out`` to choose): ``index.html``,
``data/`` and ``images/``, to open from disk; ``--serve`` then serves it on 127.0.0.1 until
Ctrl-C. Exit codes (``syphus.cli.exits``): 0 done, 2 a user error (printed as ``error: ...``).

>>> a = build_parser().parse_args(["DC_instructions.json", "--images", "DC.json", "--images", "x.parquet"])
>>> a.instructions, a.images, a.translations, a.per_page, a.serve, a.port
(['DC_instructions.json'], ['DC.json', 'x.parquet'], [], 50, False, 0)
>>> import io
>>> out = io.StringIO()
>>> int(view_main(["missing_instructions.json"], out))
2
>>> print(out.getvalue(), end="")
error: missing_instructions.json: file not found
"""

from __future__ import annotations

import argparse
from typing import TextIO

from syphus.cli.exits import Exit, guard
from syphus.cli.flags import Parser
from syphus.release.view import CHUNK_SIZE, PER_PAGE, ViewResult, build_view, make_server


def summary(r: ViewResult) -> str:
    """What ``syphus view`` reports once the folder is written."""
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
    if r.annotated:
        lines.append(f"annotations: {r.annotated:,} of {r.pairs:,} pairs show the annotation their query was made from")
    lines += [f"  {note}" for note in r.annotation_notes if note.startswith("no annotations")]
    lines.append(f"open {r.index} in a browser (works offline from disk), or add --serve")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
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
    return guard(lambda: run(argv, stream), lambda text: stream.write(text + "\n"))


def run(argv: list[str], stream: TextIO) -> int:
    """Build the viewer folder (and serve it with ``--serve``); what was written goes to ``stream``.
    A UserError is raised, for the caller's guard."""
    a = build_parser().parse_args(argv)
    r = build_view(a.instructions, a.translations, a.images, a.out, chunk_size=a.chunk_size,
                   per_page=a.per_page)
    stream.write(summary(r) + "\n")
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
    return Exit.OK
