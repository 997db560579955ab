"""Convert: images, COCO sets, image pairs and videos -> a release image file (``XX.json`` / ``XX.parquet``).

The MIMIC-IT image files map an image id to a base64 image, ``{"<image id>": "<base64>"}``
(later releases: the same mapping as Parquet with columns ``id`` and ``base64``). Images are
resized to 224x224 and stored as PNG; videos are sampled at 1 frame per second (TVC: 16 evenly
spaced frames per clip). Ids follow the scene's convention (syphus.release.scenes):

- ``--images DIR`` (recursive): ``<SCENE>_IMG_<file stem>``; for LA the last run of digits of
  the stem, zero-padded to 12 (``COCO_train2014_000000498792.jpg`` -> ``LA_IMG_000000498792``).
- ``--coco DIR --annotations instances_*.json``: LA -> ``LA_IMG_<COCO image id, 12 digits>``,
  CGD -> ``CGD_IMG_<file stem>``. Files are looked up as ``DIR/<file_name>``, then
  ``DIR/<split>/<file_name>`` (split from the annotation name, e.g. ``train2017``).
- ``--pairs pairs.json`` (SD): our own format, a JSON list of ``[pair_id, path_a, path_b]``
  (paths relative to the pairs file), e.g. ``[[12, "a/12_1.png", "a/12_2.png"]]`` ->
  ``SD_IMG_00012_1`` and ``SD_IMG_00012_2``.
- ``--videos DIR`` (recursive): frames ``DC_IMG_<stem>_<4 digits>``, ``TVC_IMG_<stem>_<4 digits>``,
  ``E4D_IMG_<stem>_<8 digits>``, ``SN_IMG_<stem>_color_<6 digits>``. ``--fps R`` (default 1.0,
  any positive rate) takes frame k at t = k/R and numbers it k; ``--frames N`` takes N evenly
  spaced frames instead.

Use::

    python -m syphus.release.convert --scene DC --videos videos/ --out DC.json --parquet DC.parquet

Encoding runs on ``--workers`` processes with at most 4 x workers tasks in flight; workers
append each finished image as one line ``{"id", "base64"}`` (a single ``os.write``) to
``<out>.parts/parts.jsonl``, so the main process never holds image data and memory stays flat.
An interrupted run (Ctrl-C, SIGKILL) resumes: ids already in the parts file are skipped (a torn
last line is dropped). When every input is done the parts are assembled (streamed, sorted by
id) into the outputs, written atomically, and the parts folder is removed. Unreadable inputs
are reported ("skipped <path>: <why>"), listed in ``<out>.skipped.txt``, and the exit code is 1
(2 on a user error, 130 when interrupted). A progress line (done/total, images/s) is printed every
5 s. Memory: no image data in the main process; ids cost 16 bytes each (IdSet, for duplicate and
resume checks) and the final sort by id is an external merge sort (at most SORT_CHUNK ids held).

Imports: syphus.errors, syphus.release.export (``_ObjectWriter``), syphus.idset; cv2 and numpy
(opencv-python-headless), pyarrow for ``--parquet``.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from syphus.errors import UserError
from syphus.idset import IdSet

SCENES = ("LA", "CGD", "DC", "TVC", "VST", "SD", "SN", "E4D")
VIDEO_SCENES = ("DC", "TVC", "SN", "E4D")
FRAME_DIGITS = {"DC": 4, "TVC": 4, "E4D": 8, "SN": 6}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jpe", ".jp2", ".pbm",
              ".pgm", ".ppm", ".pnm", ".sr", ".ras", ".exr", ".hdr", ".pic"}
VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
              ".3gp", ".ts", ".mts", ".ogv"}
CV2_HINT = "pip install 'syphus[images]' (opencv-python-headless)"
GROUP = 8                 # video frames per task
PROGRESS_EVERY = 5.0      # seconds between progress lines
_DELAY_ENV = "SYPHUS_CONVERT_TEST_DELAY"  # test hook: seconds to sleep per encoded image


@dataclass(frozen=True)
class Settings:
    size: int = 224
    fmt: str = "png"
    keep_aspect: bool = False


# ---------------------------------------------------------------- ids and inputs

def _walk(folder: Path, exts: set[str]) -> Iterator[Path]:
    """Files under ``folder`` with one of ``exts``, in a stable order, one directory listed at a time."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in exts:
                yield Path(root) / name


def la_id(stem: str) -> str | None:
    """``COCO_train2014_000000498792`` -> ``LA_IMG_000000498792``; None if the stem has no digits."""
    runs = re.findall(r"\d+", stem)
    return f"LA_IMG_{int(runs[-1]):012d}" if runs else None


def image_id_for(scene: str, path: Path) -> str | None:
    return la_id(path.stem) if scene == "LA" else f"{scene}_IMG_{path.stem}"


def frame_id(scene: str, stem: str, k: int) -> str:
    if scene == "SN":
        return f"SN_IMG_{stem}_color_{k:06d}"
    return f"{scene}_IMG_{stem}_{k:0{FRAME_DIGITS.get(scene, 4)}d}"


def _coco_items(scene: str, folder: Path, annotations: list[Path]) -> Iterator[tuple[str, Path]]:
    for ann in annotations:
        try:
            with ann.open("r", encoding="utf-8") as f:
                images = json.load(f).get("images")
        except (OSError, ValueError, AttributeError) as e:
            raise UserError(f"{ann}: not a readable COCO annotation file ({e}); pass instances_*.json") from e
        if not isinstance(images, list):
            raise UserError(f"{ann}: no 'images' list; pass a COCO instances_*.json file")
        split = ann.stem.split("_", 1)[-1]
        for n, rec in enumerate(images):
            try:
                name, number = rec["file_name"], rec["id"]
            except (KeyError, TypeError):
                raise UserError(f"{ann}: images[{n}] has no file_name/id; repair the annotation file") from None
            path = folder / name
            if not path.exists() and (folder / split / name).exists():
                path = folder / split / name
            iid = f"LA_IMG_{int(number):012d}" if scene == "LA" else f"CGD_IMG_{Path(name).stem}"
            yield iid, path


def _pairs_items(pairs: Path) -> Iterator[tuple[str, Path]]:
    try:
        data = json.loads(pairs.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{pairs}: not a readable JSON file ({e}); pass a JSON list of [pair_id, path_a, path_b]") from e
    if not isinstance(data, list):
        raise UserError(f"{pairs}: expected a JSON list of [pair_id, path_a, path_b]")
    for n, entry in enumerate(data, 1):
        ok = isinstance(entry, list) and len(entry) == 3 and all(isinstance(x, (str, int)) for x in entry)
        if not ok or not str(entry[0]).isdigit():
            raise UserError(f"{pairs}: entry {n} is {entry!r}; each entry must be [pair_id (digits), path_a, path_b]")
        pid = int(entry[0])
        yield f"SD_IMG_{pid:05d}_1", pairs.parent / str(entry[1])
        yield f"SD_IMG_{pid:05d}_2", pairs.parent / str(entry[2])


# ---------------------------------------------------------------- worker side

_STATE: dict = {}


def _init_worker(parts: str, settings: Settings, ignore_sigint: bool) -> None:
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    old = _STATE.get("fd")
    if old is not None:
        os.close(old)
    _STATE.update(fd=os.open(parts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644), settings=settings,
                  delay=float(os.environ.get(_DELAY_ENV) or 0))


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserError(f"syphus convert needs OpenCV: {CV2_HINT}") from None
    return cv2


def encode(img, settings: Settings) -> str:
    """A decoded BGR image -> base64 of it resized to ``size`` x ``size`` (stretched, or fitted and padded)."""
    cv2 = _cv2()
    import numpy as np
    s = settings.size
    h, w = img.shape[:2]
    if settings.keep_aspect:
        scale = min(s / w, s / h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    else:
        nw = nh = s
    interp = cv2.INTER_AREA if nw * nh < w * h else cv2.INTER_LINEAR
    out = cv2.resize(img, (nw, nh), interpolation=interp)
    if (nw, nh) != (s, s):
        canvas = np.zeros((s, s, 3), dtype=out.dtype)
        y, x = (s - nh) // 2, (s - nw) // 2
        canvas[y:y + nh, x:x + nw] = out
        out = canvas
    ext = ".png" if settings.fmt == "png" else ".jpg"
    ok, buf = cv2.imencode(ext, out)
    if not ok:
        raise ValueError(f"could not encode as {settings.fmt}")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _append(image_id: str, b64: str) -> None:
    if _STATE["delay"]:
        time.sleep(_STATE["delay"])
    line = (json.dumps({"id": image_id, "base64": b64}) + "\n").encode("ascii")
    n = os.write(_STATE["fd"], line)
    if n != len(line):
        raise OSError(f"short write to the parts file ({n} of {len(line)} bytes)")


def _load_image(path: str):
    cv2 = _cv2()
    import numpy as np
    with open(path, "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ValueError("not an image OpenCV can decode")
    return img


def image_task(items: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
    """Decode, resize, encode and append each (id, path); returns (written, [(path, why)])."""
    done, errors = 0, []
    for image_id, path in items:
        try:
            b64 = encode(_load_image(path), _STATE["settings"])
        except (OSError, ValueError) as e:
            errors.append((path, str(e)))
            continue
        _append(image_id, b64)
        done += 1
    return done, errors


def video_task(path: str, picks: list[tuple[str, int]]) -> tuple[int, list[tuple[str, str]]]:
    """Frames (id, frame index) of one video, indices increasing: seek to the first, grab forward."""
    cv2 = _cv2()
    cap = cv2.VideoCapture(path)
    done, errors = 0, []
    try:
        if not cap.isOpened():
            return 0, [(path, "not a video OpenCV can open")]
        pos = picks[0][1]
        if pos > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, pos)
        for image_id, index in picks:
            while pos < index:
                if not cap.grab():
                    break
                pos += 1
            ok, frame = cap.read() if pos == index else (False, None)
            if not ok or frame is None:
                if index == 0 and not done:
                    errors.append((path, "no frame could be decoded"))
                break  # the metadata overstated the length: stop at the real end
            pos += 1
            _append(image_id, encode(frame, _STATE["settings"]))
            done += 1
    finally:
        cap.release()
    return done, errors


def video_sequential_task(path: str, scene: str, stem: str, fps: float | None, frames: int | None,
                          skip: list[str]) -> tuple[int, list[tuple[str, str]]]:
    """For videos whose metadata lack the frame rate or count: read every frame in order."""
    cv2 = _cv2()
    skipped = set(skip)
    done = 0

    def open_():
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise ValueError("not a video OpenCV can open")
        return cap

    try:
        if frames is not None:  # count first, then take N evenly spaced
            cap = open_()
            total = 0
            while cap.grab():
                total += 1
            cap.release()
            if total == 0:
                return 0, [(path, "no frame could be decoded")]
            wanted = _even(total, frames)
            cap, pos = open_(), 0
            for k, index in enumerate(wanted):
                while pos < index and cap.grab():
                    pos += 1
                ok, frame = cap.read()
                if not ok:
                    break
                pos += 1
                iid = frame_id(scene, stem, k)
                if iid not in skipped:
                    _append(iid, encode(frame, _STATE["settings"]))
                    done += 1
            cap.release()
            return done, []
        cap = open_()
        vfps = cap.get(cv2.CAP_PROP_FPS) or 0
        k, n = 0, 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            t = ms / 1000 if ms and ms > 0 else (n / vfps if vfps > 0 else n / 30.0)  # 30 fps if nothing says
            n += 1
            if t + 1e-6 >= k / fps or k == 0:
                iid = frame_id(scene, stem, k)
                if iid not in skipped:
                    _append(iid, encode(frame, _STATE["settings"]))
                    done += 1
                k += 1
        cap.release()
        if n == 0:
            return 0, [(path, "no frame could be decoded")]
        return done, []
    except (OSError, ValueError) as e:
        return done, [(path, str(e))]


def _even(count: int, n: int) -> list[int]:
    """``n`` evenly spaced frame indices over ``count`` frames (repeats when n > count)."""
    if n == 1:
        return [0]
    return [round(i * (count - 1) / (n - 1)) for i in range(n)]


# ---------------------------------------------------------------- parts and assembly

def read_parts(parts: Path) -> IdSet:
    """Ids already in the parts file; a torn last line is cut off so appends start on a fresh line."""
    done = IdSet()
    if not parts.exists():
        return done
    good = 0
    with parts.open("rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            good += len(line)
            try:
                done.add(json.loads(line)["id"])
            except (ValueError, KeyError, TypeError):
                pass  # a damaged line: its image is redone
    if good != parts.stat().st_size:
        os.truncate(parts, good)
    return done


SORT_CHUNK = 100_000  # (id, offset) pairs sorted in memory at a time while assembling


def _sorted_index(parts: Path, chunk: int | None = None) -> Iterator[tuple[str, int]]:
    """(id, offset) of every complete line of the parts file, sorted by id: an external merge sort,
    so at most ``chunk`` pairs are in memory whatever the number of images."""
    import heapq
    import tempfile

    chunk = chunk or SORT_CHUNK
    runs: list = []
    buf: list[tuple[str, int]] = []

    def spill() -> None:
        buf.sort()
        f = tempfile.TemporaryFile("w+", encoding="utf-8", dir=parts.parent)
        for item in buf:
            f.write(json.dumps(item) + "\n")
        f.seek(0)
        runs.append(f)
        buf.clear()

    with parts.open("rb") as f:
        offset = 0
        for line in f:
            if line.endswith(b"\n"):
                try:
                    buf.append((json.loads(line)["id"], offset))
                except (ValueError, KeyError, TypeError):
                    pass
                if len(buf) >= chunk:
                    spill()
            offset += len(line)
    if not runs:
        buf.sort()
        yield from buf
        return
    if buf:
        spill()
    try:
        yield from heapq.merge(*(((i, o) for i, o in map(json.loads, run)) for run in runs))
    finally:
        for run in runs:
            run.close()


def assemble(parts: Path, out: Path | None, parquet: Path | None, row_group_rows: int = 512,
             row_group_bytes: int = 32 << 20) -> int:
    """Write the outputs from the parts file, sorted by id and streamed: one image in memory at a
    time (plus one Parquet row group), and at most SORT_CHUNK ids."""
    index = _sorted_index(parts)
    writer = None
    if out is not None:
        from syphus.release.export import _ObjectWriter
        writer = _ObjectWriter(out, None)
    table = None
    if parquet is not None:
        pa, pq = _pyarrow()
        schema = pa.schema([("id", pa.string()), ("base64", pa.string())])
        ptmp = parquet.with_name(parquet.name + ".tmp")
        table = pq.ParquetWriter(str(ptmp), schema)
        ids: list[str] = []
        b64s: list[str] = []
        size = 0
    n, last = 0, None
    with parts.open("rb") as f:
        for image_id, offset in index:
            if image_id == last:
                continue
            last = image_id
            f.seek(offset)
            b64 = json.loads(f.readline())["base64"]
            n += 1
            if writer is not None:
                writer.add(image_id, b64)
            if table is not None:
                ids.append(image_id)
                b64s.append(b64)
                size += len(b64)
                if len(ids) >= row_group_rows or size >= row_group_bytes:
                    table.write_table(pa.Table.from_pydict({"id": ids, "base64": b64s}, schema=schema))
                    ids, b64s, size = [], [], 0
    if table is not None:
        if ids or n == 0:
            table.write_table(pa.Table.from_pydict({"id": ids, "base64": b64s}, schema=schema))
        table.close()
        os.replace(ptmp, parquet)
    if writer is not None:
        writer.close()
    return n


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("--parquet needs pyarrow: pip install 'syphus[parquet]'") from None
    return pa, pq


# ---------------------------------------------------------------- the run

class _Progress:
    def __init__(self, stream, total: int, unit: str):
        self.stream, self.total, self.unit = stream, total, unit
        self.inputs = self.images = 0
        self.t0 = self.last = time.monotonic()

    def line(self) -> str:
        dt = max(time.monotonic() - self.t0, 1e-9)
        return (f"convert: {self.inputs}/{self.total or '?'} {self.unit}, {self.images} images encoded, "
                f"{self.images / dt:.1f} images/s")

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY:
            self.last = now
            print(self.line(), file=self.stream, flush=True)


def _probe(path: Path) -> tuple[float, int]:
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return -1.0, -1
        fps, count = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        cap.release()
    ok = lambda x: x is not None and math.isfinite(x) and x > 0  # noqa: E731
    return (fps if ok(fps) else 0.0), (int(count) if ok(count) else 0)


def plan_frames(vfps: float, count: int, fps: float | None, frames: int | None) -> list[int]:
    """Frame indices to take (position k -> frame k of the ids) from the video's rate and frame count."""
    if frames is not None:
        return _even(count, frames)
    n = max(1, math.ceil(count * fps / vfps - 1e-9))
    return [min(count - 1, round(k * vfps / fps)) for k in range(n)]


def convert(scene: str, *, images: Path | None = None, coco: Path | None = None,
            annotations: list[Path] | None = None, pairs: Path | None = None, videos: Path | None = None,
            out: Path | None = None, parquet: Path | None = None, fps: float | None = 1.0,
            frames: int | None = None, settings: Settings = Settings(), workers: int | None = None,
            stream=sys.stderr) -> int:
    """Run one conversion (see the module docstring); returns the number of skipped inputs."""
    if scene not in SCENES:
        raise UserError(f"--scene {scene!r}: choose one of {', '.join(SCENES)}")
    if sum(x is not None for x in (images, coco, pairs, videos)) != 1:
        raise UserError("pass exactly one input: --images DIR, --coco DIR, --pairs FILE or --videos DIR")
    if out is None and parquet is None:
        raise UserError("pass --out XX.json and/or --parquet XX.parquet")
    if coco is not None and scene not in ("LA", "CGD"):
        raise UserError("--coco is for the LA and CGD scenes; use --images DIR for other image folders")
    if coco is not None and not annotations:
        raise UserError("--coco needs --annotations instances_*.json")
    if pairs is not None and scene != "SD":
        raise UserError("--pairs makes SD ids (SD_IMG_00001_1); pass --scene SD")
    if videos is not None and scene not in VIDEO_SCENES:
        raise UserError(f"--videos is for the video scenes {', '.join(VIDEO_SCENES)}; use --images for {scene}")
    if frames is not None and frames < 1:
        raise UserError("--frames must be at least 1")
    if frames is None and (fps is None or not fps > 0):
        raise UserError("--fps must be a positive rate (0.5 = one frame every 2 s)")
    if settings.size < 1 or settings.fmt not in ("png", "jpeg"):
        raise UserError("--size must be positive and --format png or jpeg")
    for folder, flag in ((images, "--images"), (coco, "--coco"), (videos, "--videos")):
        if folder is not None and not folder.is_dir():
            raise UserError(f"{folder}: not a folder; pass an existing folder to {flag}")
    if pairs is not None and not pairs.is_file():
        raise UserError(f"{pairs}: file not found; pass a JSON list of [pair_id, path_a, path_b] to --pairs")
    if parquet is not None:
        _pyarrow()
    _cv2()

    base = out if out is not None else parquet
    parts_dir = base.with_name(base.name + ".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts = parts_dir / "parts.jsonl"
    skipped_path = base.with_name(base.name + ".skipped.txt")
    stamp = {"scene": scene, "size": settings.size, "format": settings.fmt, "keep_aspect": settings.keep_aspect,
             "fps": fps, "frames": frames}
    stamp_path = parts_dir / "settings.json"
    if stamp_path.exists():
        try:
            previous = json.loads(stamp_path.read_text(encoding="utf-8"))
        except ValueError:
            previous = None
        if previous is not None and previous != stamp:
            raise UserError(f"{parts_dir}: an interrupted conversion with other settings ({previous}) is there; "
                            f"rerun it with the same flags, or delete that folder to start over")
    else:
        stamp_path.write_text(json.dumps(stamp) + "\n", encoding="utf-8")
    done = read_parts(parts)
    if len(done):
        print(f"convert: resuming, {len(done)} images already done in {parts}", file=stream, flush=True)
    workers = max(1, workers or os.cpu_count() or 1)
    window = 4 * workers

    # what to do: a total for progress, then a stream of tasks
    if videos is not None:
        total, unit = sum(1 for _ in _walk(videos, VIDEO_EXTS)), "videos"
    elif images is not None:
        total, unit = sum(1 for _ in _walk(images, IMAGE_EXTS)), "images"
    else:
        total, unit = None, "images"
    progress = _Progress(stream, total or 0, unit)
    skips: list[str] = []
    skipped_file = skipped_path.open("w", encoding="utf-8")
    seen = IdSet()

    def skip(path, why: str) -> None:
        print(f"skipped {path}: {why}", file=stream, flush=True)
        skipped_file.write(f"{path}\t{why}\n")
        skipped_file.flush()
        skips.append(str(path))

    def image_items() -> Iterator[tuple[str, Path]]:
        if images is not None:
            for path in _walk(images, IMAGE_EXTS):
                iid = image_id_for(scene, path)
                if iid is None:
                    skip(path, "an LA file name must contain the COCO image id (digits)")
                    progress.inputs += 1
                    continue
                yield iid, path
        elif coco is not None:
            yield from _coco_items(scene, coco, annotations)
        else:
            yield from _pairs_items(pairs)

    def tasks() -> Iterator[tuple]:
        if videos is None:
            batch: list[tuple[str, str]] = []
            for iid, path in image_items():
                if not seen.add(iid):
                    skip(path, f"duplicate id {iid} (another file already gave it)")
                    progress.inputs += 1
                    continue
                if iid in done:
                    progress.inputs += 1
                    continue
                batch.append((iid, str(path)))
                if len(batch) >= 4:
                    yield (len(batch), image_task, batch)
                    batch = []
            if batch:
                yield (len(batch), image_task, batch)
            return
        for path in _walk(videos, VIDEO_EXTS):
            stem = path.stem
            vfps, count = _probe(path)
            if vfps < 0:
                skip(path, "not a video OpenCV can open")
                progress.inputs += 1
                continue
            if vfps == 0 or count == 0:
                prefix = frame_id(scene, stem, 0)[:-FRAME_DIGITS[scene]]
                already = [i for i in _done_ids(parts) if i.startswith(prefix)] if len(done) else []
                yield (1, video_sequential_task, str(path), scene, stem, fps, frames, already)
                continue
            picks = [(frame_id(scene, stem, k), index)
                     for k, index in enumerate(plan_frames(vfps, count, fps, frames))]
            todo = [p for p in picks if p[0] not in done]
            groups = [todo[i:i + GROUP] for i in range(0, len(todo), GROUP)]
            if not groups:
                progress.inputs += 1
            for g, group in enumerate(groups):
                yield (1 if g == len(groups) - 1 else 0, video_task, str(path), group)

    interrupted = False
    pool = None
    try:
        if workers == 1:
            _init_worker(str(parts), settings, ignore_sigint=False)
            for counts, fn, *args in tasks():
                _collect(fn(*args), counts, progress, skip)
        else:
            pool = ProcessPoolExecutor(workers, initializer=_init_worker,
                                       initargs=(str(parts), settings, True))
            pending: dict = {}
            for counts, fn, *args in tasks():
                while len(pending) >= window:
                    finished, _ = wait(pending, timeout=PROGRESS_EVERY, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        _collect(fut.result(), pending.pop(fut), progress, skip)
                    progress.tick()
                pending[pool.submit(fn, *args)] = counts
            while pending:
                finished, _ = wait(pending, timeout=PROGRESS_EVERY, return_when=FIRST_COMPLETED)
                for fut in finished:
                    _collect(fut.result(), pending.pop(fut), progress, skip)
                progress.tick()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if _STATE.get("fd") is not None and workers == 1:
            os.close(_STATE.pop("fd"))
        skipped_file.close()
    if interrupted:
        print(f"convert: interrupted ({progress.line().removeprefix('convert: ')}); "
              f"run the same command again to resume from {parts}",
              file=stream, flush=True)
        raise KeyboardInterrupt
    if progress.total == 0:
        progress.total = progress.inputs
    progress.tick(force=True)
    n = assemble(parts, out, parquet)
    shutil.rmtree(parts_dir)
    if not skips:
        skipped_path.unlink(missing_ok=True)
    where = " and ".join(str(p) for p in (out, parquet) if p is not None)
    print(f"convert: wrote {n} images to {where} ({progress.images} encoded in this run, "
          f"{len(done)} from an earlier run); {len(skips)} skipped"
          + (f" (listed in {skipped_path})" if skips else ""), file=stream, flush=True)
    return len(skips)


def _done_ids(parts: Path) -> Iterator[str]:
    with parts.open("rb") as f:
        for line in f:
            try:
                yield json.loads(line)["id"]
            except (ValueError, KeyError, TypeError):
                pass


def _collect(result, counts: int, progress: _Progress, skip) -> None:
    written, errors = result
    progress.images += written
    for path, why in errors:
        skip(path, why)
    progress.inputs += counts
    progress.tick()


# ---------------------------------------------------------------- CLI

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"{message} (see: syphus convert --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="syphus convert", description=(
        "Convert images, COCO sets, SD image pairs or videos into a release image file "
        "(XX.json {id: base64} and/or XX.parquet with columns id, base64)."))
    p.add_argument("--scene", required=True, choices=SCENES, help="the scene whose id convention to use")
    src = p.add_mutually_exclusive_group(required=True)
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
    p.add_argument("--out", type=Path, metavar="XX.json", help="write {id: base64} JSON here")
    p.add_argument("--parquet", type=Path, metavar="XX.parquet", help="write a Parquet table (id, base64) here")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="encoding processes (default: all cores)")
    return p


def convert_main(argv: list[str], stream) -> int:
    """``syphus convert ...``: 0 ok, 1 if some inputs were skipped, 2 on a user error, 130 if interrupted."""
    try:
        args = _parser().parse_args(argv)
        skipped = convert(args.scene, images=args.images, coco=args.coco, annotations=args.annotations,
                          pairs=args.pairs, videos=args.videos, out=args.out, parquet=args.parquet,
                          fps=None if args.frames is not None else args.fps, frames=args.frames,
                          settings=Settings(args.size, args.format, args.keep_aspect),
                          workers=args.workers, stream=stream)
    except UserError as e:
        print(f"error: {e}", file=stream, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1 if skipped else 0


if __name__ == "__main__":
    # run the imported module's copy, so the worker functions pickle as syphus.release.convert.*
    from syphus.release.convert import convert_main as _main
    sys.exit(_main(sys.argv[1:], sys.stdout))
