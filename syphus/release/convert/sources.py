"""Sources: what a conversion reads, and the encoding tasks it makes of it.

One of: a folder of images (recursive), a COCO image folder with its ``instances_*.json``, an SD
pairs file (a JSON list of ``[pair_id, path_a, path_b]``, paths relative to it) or a folder of
videos (recursive); which of them a scene takes, and the ids they get, its family says
(``syphus.families``). ``tasks`` skips what an earlier run did and ids given twice, and streams:
folders are listed a directory at a time and tasks are made as the pool takes them.

>>> Sources("SD", pairs=Path("pairs.json")).check()
>>> Sources("LA", pairs=Path("pairs.json")).check()
Traceback (most recent call last):
...
syphus.errors.UserError: --pairs makes SD ids (SD_IMG_00001_1); pass --scene SD
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.release.convert import frames, worker
from syphus.release.convert.parts import Parts
from syphus.release.convert.pool import Task
from syphus.release.convert.tally import Tally
from syphus.families import FAMILIES, family

SCENES = tuple(f.code for f in FAMILIES)  # what --scene takes: the image families
VIDEO_SCENES = tuple(f.code for f in FAMILIES if f.frame_digits)  # --videos
COCO_SCENES = tuple(f.code for f in FAMILIES if f.coco)  # --coco
PAIR_SCENES = tuple(f.code for f in FAMILIES if f.pairs)  # --pairs
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jpe", ".jp2", ".pbm",
              ".pgm", ".ppm", ".pnm", ".sr", ".ras", ".exr", ".hdr", ".pic"}
VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
              ".3gp", ".ts", ".mts", ".ogv"}
BATCH = 4  # still images per task
GROUP = 8  # video frames per task


def walk(folder: Path, exts: set[str]) -> Iterator[Path]:
    """Files under ``folder`` with one of ``exts``, in a stable order, one directory listed at a time."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in exts:
                yield Path(root) / name


@dataclass(frozen=True)
class Sources:
    """The input of one conversion for ``scene``; video frames are taken at ``fps`` or ``frames`` per video."""

    scene: str
    images: Path | None = None
    coco: Path | None = None
    annotations: list[Path] | None = None
    pairs: Path | None = None
    videos: Path | None = None
    fps: float | None = 1.0
    frames: int | None = None

    def check(self) -> None:
        """UserError naming the fix if the flags do not make one conversion."""
        if self.scene not in SCENES:
            raise UserError(f"--scene {self.scene!r}: choose one of {', '.join(SCENES)}")
        if sum(x is not None for x in (self.images, self.coco, self.pairs, self.videos)) != 1:
            raise UserError("pass exactly one input: --images DIR, --coco DIR, --pairs FILE or --videos DIR")
        if self.coco is not None and self.scene not in COCO_SCENES:
            raise UserError(f"--coco is for the {' and '.join(COCO_SCENES)} scenes; "
                            "use --images DIR for other image folders")
        if self.coco is not None and not self.annotations:
            raise UserError("--coco needs --annotations instances_*.json")
        if self.pairs is not None and self.scene not in PAIR_SCENES:
            paired = family(PAIR_SCENES[0])
            raise UserError(f"--pairs makes {paired.code} ids ({paired.pair_image_id(1, 1)}); "
                            f"pass --scene {paired.code}")
        if self.videos is not None and self.scene not in VIDEO_SCENES:
            raise UserError(f"--videos is for the video scenes {', '.join(VIDEO_SCENES)}; "
                            f"use --images for {self.scene}")
        if self.frames is not None and self.frames < 1:
            raise UserError("--frames must be at least 1")
        if self.frames is None and (self.fps is None or not self.fps > 0):
            raise UserError("--fps must be a positive rate (0.5 = one frame every 2 s)")

    def check_paths(self) -> None:
        """UserError naming the flag if an input folder or file is not there."""
        for folder, flag in ((self.images, "--images"), (self.coco, "--coco"), (self.videos, "--videos")):
            if folder is not None and not folder.is_dir():
                raise UserError(f"{folder}: not a folder; pass an existing folder to {flag}")
        if self.pairs is not None and not self.pairs.is_file():
            raise UserError(f"{self.pairs}: file not found; pass a JSON list of [pair_id, path_a, path_b] to --pairs")

    def total(self) -> tuple[int | None, str]:
        """(number of inputs, what they are) for progress; None when only reading them would tell."""
        if self.videos is not None:
            return sum(1 for _ in walk(self.videos, VIDEO_EXTS)), "videos"
        if self.images is not None:
            return sum(1 for _ in walk(self.images, IMAGE_EXTS)), "images"
        return None, "images"

    def tasks(self, done: IdSet, parts: Parts, tally: Tally) -> Iterator[Task]:
        """The encoding tasks for everything not in ``done``; skips and finished inputs go to ``tally``."""
        if self.videos is not None:
            yield from self._video_tasks(done, parts, tally)
        else:
            yield from self._image_tasks(done, tally)

    # ---------------------------------------------------------------- still images

    def _image_tasks(self, done: IdSet, tally: Tally) -> Iterator[Task]:
        seen = IdSet()
        batch: list[tuple[str, str]] = []
        for iid, path in self._items(tally):
            if not seen.add(iid):
                tally.skip(path, f"duplicate id {iid} (another file already gave it)")
                tally.finished()
                continue
            if iid in done:
                tally.finished()
                continue
            batch.append((iid, str(path)))
            if len(batch) >= BATCH:
                yield Task(len(batch), worker.image_task, (batch,))
                batch = []
        if batch:
            yield Task(len(batch), worker.image_task, (batch,))

    def _items(self, tally: Tally) -> Iterator[tuple[str, Path]]:
        if self.images is not None:
            for path in walk(self.images, IMAGE_EXTS):
                iid = family(self.scene).layout_image_id(path.relative_to(self.images))
                if iid is None:
                    tally.skip(path, family(self.scene).no_id())
                    tally.finished()
                    continue
                yield iid, path
        elif self.coco is not None:
            yield from self._coco_items()
        else:
            yield from self._pair_items()

    def _coco_items(self) -> Iterator[tuple[str, Path]]:
        for ann in self.annotations:
            try:
                with ann.open("r", encoding="utf-8") as f:
                    images = json.load(f).get("images")
            except (OSError, ValueError, AttributeError) as e:
                raise UserError(f"{ann}: not a readable COCO annotation file ({e}); pass instances_*.json") from e
            if not isinstance(images, list):
                raise UserError(f"{ann}: no 'images' list; pass a COCO instances_*.json file")
            split = ann.stem.split("_", 1)[-1]  # instances_train2017 -> train2017
            for n, rec in enumerate(images):
                try:
                    name, number = rec["file_name"], rec["id"]
                except (KeyError, TypeError):
                    raise UserError(f"{ann}: images[{n}] has no file_name/id; repair the annotation file") from None
                path = self.coco / name
                if not path.exists() and (self.coco / split / name).exists():
                    path = self.coco / split / name
                yield family(self.scene).coco_image_id(number, name), path

    def _pair_items(self) -> Iterator[tuple[str, Path]]:
        pairs = self.pairs
        try:
            data = json.loads(pairs.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"{pairs}: not a readable JSON file ({e}); "
                            f"pass a JSON list of [pair_id, path_a, path_b]") from e
        if not isinstance(data, list):
            raise UserError(f"{pairs}: expected a JSON list of [pair_id, path_a, path_b]")
        for n, entry in enumerate(data, 1):
            ok = isinstance(entry, list) and len(entry) == 3 and all(isinstance(x, (str, int)) for x in entry)
            if not ok or not str(entry[0]).isdigit():
                raise UserError(f"{pairs}: entry {n} is {entry!r}; "
                                f"each entry must be [pair_id (digits), path_a, path_b]")
            yield family(self.scene).pair_image_id(entry[0], 1), pairs.parent / str(entry[1])
            yield family(self.scene).pair_image_id(entry[0], 2), pairs.parent / str(entry[2])

    # ---------------------------------------------------------------- videos

    def _video_tasks(self, done: IdSet, parts: Parts, tally: Tally) -> Iterator[Task]:
        for path in walk(self.videos, VIDEO_EXTS):
            stem = path.stem
            vfps, count = frames.probe(path)
            if vfps < 0:
                tally.skip(path, "not a video OpenCV can open")
                tally.finished()
                continue
            if vfps == 0 or count == 0:  # no rate or length in the metadata: read it in order
                already = list(parts.ids(family(self.scene).frame_prefix(stem))) if len(done) else []
                yield Task(1, worker.video_sequential_task,
                           (str(path), self.scene, stem, self.fps, self.frames, already))
                continue
            planned = frames.plan(vfps, count, self.fps, self.frames)
            video = family(self.scene)
            todo = [(video.frame_id(stem, k), index, k) for k, index in enumerate(planned)
                    if video.frame_id(stem, k) not in done]
            groups = [todo[i:i + GROUP] for i in range(0, len(todo), GROUP)]
            if not groups:
                tally.finished()
            for g, group in enumerate(groups):
                k0 = group[0][2]
                yield Task(1 if g == len(groups) - 1 else 0, worker.video_task,
                           (str(path), [(i, x) for i, x, _ in group], stem, len(planned), vfps,
                            planned[k0 - 1] if k0 else -1))
