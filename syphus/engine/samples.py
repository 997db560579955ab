"""Samples: the record of which video frames ``syphus convert`` took, kept beside the image file.

For ``DC.json`` / ``DC.parquet`` the record is ``DC.frames.jsonl``: one line per frame written,
``{"id", "video", "path", "asked", "t", "source_frame", "repeat"}`` (``t``: the second the frame
shows in its video; ``asked``: the samples asked of that video, 0 when a rate was asked of a video
without a usable length; ``repeat``: the sample repeats the last decodable frame, because the video
has fewer frames than asked or its header claims more than decode), then one summary line per
video, ``{"video", "path", "asked", "written", "repeated"}``. ``--images`` labels frames by ``t``
(``frame_times``), not by their number.

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> lines = [Sample("DC_IMG_v_0000", "v", "v.mp4", 2, 0.0, 0, False), Sample("DC_IMG_v_0001", "v", "v.mp4", 2, 0.0, 0, True)]
>>> _ = (folder / PARTS_NAME).write_text("".join(json.dumps(s.to_json()) + "\\n" for s in lines))
>>> finish(folder / PARTS_NAME, record_path(folder / "DC.parquet"))
[Video(video='v', path='v.mp4', asked=2, written=2, repeated=1)]
>>> frame_times(folder / "DC.json")
{'DC_IMG_v_0000': 0.0, 'DC_IMG_v_0001': 0.0}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from syphus.durable import atomic_file
from syphus.idset import IdSet

PARTS_NAME = "frames.jsonl"  # the workers' record lines, in the parts folder


@dataclass(frozen=True)
class Sample:
    """One video frame written: its id, video (stem and path), samples asked, time, source frame, whether repeated."""

    id: str
    video: str
    path: str
    asked: int
    t: float
    source_frame: int
    repeat: bool

    def to_json(self) -> dict:
        return {**asdict(self), "t": round(self.t, 3)}


@dataclass
class Video:
    """What one video gave: samples ``asked`` (0: as many as its length holds), ``written``, ``repeated``."""

    video: str
    path: str
    asked: int
    written: int
    repeated: int


def record_path(image_file: Path) -> Path:
    """``DC.json`` or ``DC.parquet`` -> ``DC.frames.jsonl`` beside it."""
    return image_file.with_name(image_file.stem + ".frames.jsonl")


def finish(parts_lines: Path, record: Path) -> list[Video]:
    """Write ``record`` from the workers' lines (each id once), and return each video's summary.

    Nothing is written (and [] returned) when the conversion took no video frames.
    """
    if not parts_lines.exists() or parts_lines.stat().st_size == 0:
        return []
    seen, videos = IdSet(), {}
    with parts_lines.open("r", encoding="utf-8") as src, atomic_file(record, sync=False) as out:
        for line in src:
            try:
                s = json.loads(line)
            except ValueError:  # a torn last line from an interrupted run
                continue
            if not seen.add(s["id"]):
                continue
            out.write(json.dumps(s) + "\n")
            v = videos.setdefault(s["path"], Video(s["video"], s["path"], s["asked"], 0, 0))
            v.written += 1
            v.repeated += bool(s["repeat"])
        for v in videos.values():
            v.asked = v.asked or v.written
            out.write(json.dumps(asdict(v)) + "\n")
    return list(videos.values())


def frame_times(image_file: Path | str) -> dict[str, float]:
    """Frame id -> the second it shows, from the record beside ``image_file`` ({} when there is none)."""
    record = record_path(Path(image_file))
    times: dict[str, float] = {}
    if not record.is_file():
        return times
    with record.open("r", encoding="utf-8") as f:
        for line in f:
            s = json.loads(line)
            if "id" in s:
                times[s["id"]] = float(s["t"])
    return times
