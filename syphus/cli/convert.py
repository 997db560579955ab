"""``syphus convert``: the command line of syphus.release.convert, and the only part of it that speaks.

    syphus convert --scene DC --videos videos/ --out DC.json --parquet DC.parquet
    syphus convert --rewrite DC.parquet --parquet DC.parquet    # an older file: ids become the index

It prints each skipped input ("skipped <path>: <why>", also listed in ``<out>.skipped.txt``),
a progress line (done/total, images/s) at most every 5 s, each video that gave fewer distinct
frames than asked ("short video <path>: 16 frames asked, 16 written, 1 of them repeat ..."), and a
summary (for videos: frames asked and written, and where the record of their times is). Exit codes: 0 done,
1 some inputs were skipped, 2 a user error (the message names the fix), 130 interrupted (run
the same command again to resume).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from syphus.cli.exits import guard
from syphus.errors import UserError
from syphus.release.convert import (SCENES, Event, Interrupted, Progress, Repeated, Settings, Skipped, Started,
                                    convert, rewrite)

PROGRESS_EVERY = 5.0  # seconds between progress lines


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kw):
        super().__init__(*args, allow_abbrev=False, **kw)

    def error(self, message: str):
        raise UserError(f"{message} (see: syphus convert --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="syphus convert", description=(
        "Convert images, COCO sets, SD image pairs or videos into a release image file "
        "(XX.json {id: base64} and/or XX.parquet: a base64 column keyed by the pandas index id, as the "
        "MIMIC-IT trainer reads it)."))
    p.add_argument("--scene", choices=SCENES, help="the scene whose id convention to use (required, except "
                                                   "with --rewrite)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--rewrite", type=Path, metavar="FILE",
                     help="an existing image file (XX.json, or an XX.parquet whose ids are not its index): "
                          "write it as --parquet, ids as the index, without re-encoding (the same path rewrites "
                          "it in place)")
    src.add_argument("--images", type=Path, metavar="DIR", help="a folder of images (recursive)")
    src.add_argument("--coco", type=Path, metavar="DIR", help="a COCO image folder (LA, CGD); needs --annotations")
    src.add_argument("--pairs", type=Path, metavar="FILE", help="SD: a JSON list of [pair_id, path_a, path_b]")
    src.add_argument("--videos", type=Path, metavar="DIR", help="a folder of videos (recursive): DC, TVC, SN, E4D")
    p.add_argument("--annotations", type=Path, nargs="+", metavar="FILE", help="COCO instances_*.json file(s)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=float, default=1.0, help="video frames per second (default 1.0; 0.5 = every 2 s)")
    rate.add_argument("--frames", type=int, help="instead: N evenly spaced frames per video (TVC used 16)")
    p.add_argument("--size", type=int, default=224, help="square output side in pixels (default 224)")
    p.add_argument("--format", choices=("png", "jpeg"), default="png", help="image encoding (default png)")
    p.add_argument("--keep-aspect", action="store_true", help="fit inside the square and pad, instead of stretching")
    p.add_argument("--out", type=Path, metavar="XX.json", help="write {id: base64} JSON here (older trainers only)")
    p.add_argument("--parquet", type=Path, metavar="XX.parquet",
                   help="write a Parquet table here: a base64 column keyed by the pandas index id (with neither "
                        "flag: <scene>.parquet in the current folder, what the current trainer reads)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="encoding processes (default: all cores)")
    return p


class Printer:
    """Prints convert's events on ``stream``: skips as they happen, progress at most every ``every``
    seconds of ``clock`` (and always the final count), with the rate since the run started."""

    def __init__(self, stream: TextIO, every: float = PROGRESS_EVERY, clock: Callable[[], float] = time.monotonic):
        self.stream, self.every, self.clock = stream, every, clock
        self.t0 = self.last = clock()

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def line(self, p: Progress) -> str:
        rate = p.images / max(self.clock() - self.t0, 1e-9)
        return f"convert: {p.inputs}/{p.total or '?'} {p.unit}, {p.images} images encoded, {rate:.1f} images/s"

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self.t0 = self.last = self.clock()
            if event.resumed:
                self.say(f"convert: resuming, {event.resumed} images already done in {event.parts}")
        elif isinstance(event, Skipped):
            self.say(f"skipped {event.path}: {event.why}")
        elif isinstance(event, Repeated):
            self.say(f"short video {event.path}: {event.asked} frames asked, {event.written} written, "
                     f"{event.repeated} of them repeat its last decodable frame (marked in {event.record})")
        elif event.final or self.clock() - self.last >= self.every:
            self.last = self.clock()
            self.say(self.line(event))


def _rewrite(args: argparse.Namespace, printer: Printer) -> int:
    """``--rewrite FILE --parquet OUT``: 0 done (a UserError for missing or extra flags)."""
    if args.parquet is None or args.out is not None:
        raise UserError(f"--rewrite writes Parquet only: pass --parquet OUT.parquet (or --parquet {args.rewrite} "
                        "to rewrite it in place), without --out")
    n = rewrite(args.rewrite, args.parquet)
    printer.say(f"convert: wrote {n} images from {args.rewrite} to {args.parquet} (ids as the index, "
                "nothing re-encoded)")
    return 0


def convert_main(argv: list[str], stream: TextIO, clock: Callable[[], float] = time.monotonic) -> int:
    """``syphus convert ...``: 0 ok, 1 if some inputs were skipped, 2 on a user error, 130 if interrupted."""
    printer = Printer(stream, clock=clock)
    return guard(lambda: _convert(argv, printer), printer.say)


def run(argv: list[str], stream: TextIO) -> int:
    """``convert_main`` without the guard: a UserError is raised, for the caller's guard."""
    return _convert(argv, Printer(stream))


def _convert(argv: list[str], printer: Printer) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.rewrite is not None:
            return _rewrite(args, printer)
        if args.scene is None:
            raise UserError("--scene is required (one of " + ", ".join(SCENES) + "); see: syphus convert --help")
        result = convert(args.scene, images=args.images, coco=args.coco, annotations=args.annotations,
                         pairs=args.pairs, videos=args.videos, out=args.out, parquet=args.parquet,
                         fps=None if args.frames is not None else args.fps, frames=args.frames,
                         settings=Settings(args.size, args.format, args.keep_aspect),
                         workers=args.workers, on_event=printer)
    except Interrupted as e:
        printer.say(f"convert: interrupted ({printer.line(e.progress).removeprefix('convert: ')}); "
                    f"run the same command again to resume from {e.parts}")
        return 130
    except KeyboardInterrupt:
        return 130
    where = " and ".join(str(p) for p in result.outputs)
    n = len(result.skipped)
    printer.say(f"convert: wrote {result.written} images to {where} ({result.encoded} encoded in this run, "
                f"{result.resumed} from an earlier run); {n} skipped"
                + (f" (listed in {result.skipped_file})" if n else ""))
    if result.frames_record is not None:
        asked = sum(v.asked for v in result.videos)
        repeated = sum(v.repeated for v in result.videos)
        printer.say(f"convert: {len(result.videos)} videos, {asked} frames asked, "
                    f"{sum(v.written for v in result.videos)} written ({repeated} repeat a video's last "
                    f"decodable frame); frame times in {result.frames_record}")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(convert_main(sys.argv[1:], sys.stdout))
