"""Convert: images, COCO sets, image pairs and videos -> a release image file (``XX.json`` / ``XX.parquet``).

The MIMIC-IT image files map an image id to a base64 image, ``{"<image id>": "<base64>"}``
(later releases: the same mapping as Parquet, a ``base64`` column keyed by the table's pandas index
``id``, which the trainer reads as ``pandas.read_parquet(path).loc[image_id]["base64"]``). Images are
resized to 224x224 and stored as PNG; videos are sampled at 1 frame per second (TVC: 16 evenly
spaced frames per clip). Ids follow the scene's convention (syphus.engine.scenes):

- ``images=DIR`` (recursive): ``<SCENE>_IMG_<file stem>``; for LA the last run of digits of
  the stem, zero-padded to 12 (``COCO_train2014_000000498792.jpg`` -> ``LA_IMG_000000498792``).
- ``coco=DIR, annotations=[instances_*.json]``: LA -> ``LA_IMG_<COCO image id, 12 digits>``,
  CGD -> ``CGD_IMG_<file stem>``. Files are looked up as ``DIR/<file_name>``, then
  ``DIR/<split>/<file_name>`` (split from the annotation name, e.g. ``train2017``).
- ``pairs=pairs.json`` (SD): our own format, a JSON list of ``[pair_id, path_a, path_b]``
  (paths relative to the pairs file), e.g. ``[[12, "a/12_1.png", "a/12_2.png"]]`` ->
  ``SD_IMG_00012_1`` and ``SD_IMG_00012_2``.
- ``videos=DIR`` (recursive): frames ``DC_IMG_<stem>_<4 digits>``, ``TVC_IMG_<stem>_<4 digits>``,
  ``E4D_IMG_<stem>_<8 digits>``, ``SN_IMG_<stem>_color_<6 digits>``. ``fps=R`` (default 1.0, any
  positive rate) takes frame k at t = k/R and numbers it k; ``frames=N`` takes N evenly spaced
  frames instead. No sample is lost: one that lands on a frame already taken (a video shorter than
  asked) or past the last frame that decodes (a header that claims more) repeats the last decodable
  frame, is reported (a ``Repeated`` event per video) and marked in the record of what was sampled,
  ``XX.frames.jsonl`` beside the image file (syphus.engine.samples: each frame's time in the video).

How a run goes, each step its own module: ``sources`` turns the input into encoding tasks,
``frames`` plans which video frames to take, ``pool`` runs the tasks on ``workers`` processes
(``worker``: decode, ``encode``, append to the parts file), ``parts`` makes the run resumable,
``writers`` assemble the outputs, and ``tally`` counts and reports. An interrupted run (Ctrl-C,
SIGKILL) resumes when called again with the same arguments. Memory stays flat: no image data in
the main process, 16 bytes per id, and the final sort by id is an external merge sort.

``convert`` never prints: it reports through ``on_event`` (default: the ``syphus.convert``
logger) and returns a ``ConvertResult``. ``syphus convert`` (syphus.cli.convert) is its command line.
``rewrite`` turns an existing image file (JSON, or Parquet whose ids are a plain column) into
that Parquet shape without re-encoding.

>>> import json, pathlib, tempfile, numpy as np, cv2
>>> work = pathlib.Path(tempfile.mkdtemp())
>>> (work / "img").mkdir(); cv2.imwrite(str(work / "img" / "42.png"), np.zeros((10, 20, 3), np.uint8))
True
>>> result = convert("VST", images=work / "img", out=work / "VST.json", workers=1)
>>> result.written, result.encoded, result.skipped, list(json.loads((work / "VST.json").read_text()))
(1, 1, [], ['VST_IMG_42'])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syphus.errors import UserError
from syphus.engine import parquet as parquet_file
from syphus.engine import samples
from syphus.release.convert import pool
from syphus.release.convert.encode import Encoder, Settings, cv2
from syphus.release.convert.parts import Parts
from syphus.release.convert.sources import SCENES, VIDEO_SCENES, Sources
from syphus.release.convert.tally import Event, Interrupted, Progress, Repeated, Skipped, Started, Tally, log_event
from syphus.release.convert.writers import SkipList, assemble, rewrite

__all__ = ["SCENES", "VIDEO_SCENES", "ConvertResult", "Encoder", "Event", "Interrupted", "Progress", "Repeated",
           "Settings", "Skipped", "Started", "convert", "rewrite"]


@dataclass(frozen=True)
class ConvertResult:
    """What one conversion did: ``written`` images in ``outputs``, ``encoded`` of them in this run and
    ``resumed`` from an earlier one; the ``skipped`` inputs (path, why), listed in ``skipped_file``;
    for videos, what each gave (``videos``, syphus.engine.samples.Video) and the ``frames_record``."""

    outputs: tuple[Path, ...]
    written: int
    encoded: int
    resumed: int
    skipped: list[tuple[str, str]]
    skipped_file: Path | None
    videos: tuple[samples.Video, ...] = ()
    frames_record: Path | None = None


def convert(scene: str, *, images: Path | None = None, coco: Path | None = None,
            annotations: list[Path] | None = None, pairs: Path | None = None, videos: Path | None = None,
            out: Path | None = None, parquet: Path | None = None, fps: float | None = 1.0,
            frames: int | None = None, settings: Settings = Settings(), workers: int | None = None,
            encoder: Callable | None = None, on_event: Callable[[Event], None] | None = None) -> ConvertResult:
    """Run one conversion (see the module docstring) into ``out`` (JSON) and/or ``parquet``; with
    neither, into ``<scene>.parquet`` in the current folder (the current MIMIC-IT trainer reads Parquet only).

    ``encoder`` (image array -> PNG/JPEG bytes, picklable) replaces ``Encoder(settings)``;
    ``workers`` defaults to every core. Raises UserError on bad arguments and ``Interrupted``
    (a KeyboardInterrupt) when stopped; calling again with the same arguments resumes.
    """
    sources = Sources(scene, images, coco, annotations, pairs, videos, fps, frames)
    if out is None and parquet is None:  # Parquet by default: the current MIMIC-IT trainer reads nothing else
        parquet = Path(f"{scene}.parquet").absolute()
    sources.check()
    settings.check()
    sources.check_paths()
    if parquet is not None:
        parquet_file.modules("--parquet")
    cv2()
    on_event = on_event or log_event

    base = out if out is not None else parquet
    parts = Parts(base)
    done = parts.resume({"scene": scene, "size": settings.size, "format": settings.fmt,
                         "keep_aspect": settings.keep_aspect, "fps": fps, "frames": frames})
    on_event(Started(len(done), parts.file))
    total, unit = sources.total()
    skips = SkipList(base)
    tally = Tally(on_event, total, unit, on_skip=skips.add)
    try:
        pool.run(sources.tasks(done, parts, tally), workers=max(1, workers or os.cpu_count() or 1),
                 parts_file=str(parts.file), encoder=encoder or Encoder(settings),
                 collect=tally.collect, heartbeat=tally.tick)
    except KeyboardInterrupt:
        raise Interrupted(tally.snapshot(), parts.file) from None
    finally:
        skips.close()
    tally.tick(final=True)
    written = assemble(parts, out, parquet)
    record = samples.record_path(base)
    videos = samples.finish(parts.folder / samples.PARTS_NAME, record)
    for v in videos:
        if v.repeated or v.written < v.asked:
            on_event(Repeated(v.path, v.asked, v.written, v.repeated, record))
    parts.remove()
    skips.drop_if_empty()
    return ConvertResult(tuple(p for p in (out, parquet) if p is not None), written, tally.images, len(done),
                         tally.skipped, skips.path if tally.skipped else None, tuple(videos),
                         record if videos else None)
