"""Worker: the tasks an encoding process runs, and the state it keeps between them.

Every task decodes its inputs, encodes each image with the run's encoder and appends it to the
parts file as one line (a single ``os.write``, so lines from several processes never mix), then
returns ``(images written, [(path, why it was skipped)])``. The main process never sees image
data. The tasks are module-level functions, so they pickle for a process pool.

A video frame is written with its sample record (``syphus.engine.samples``: the time it shows, the
source frame, the count asked) appended to ``frames.jsonl`` beside the parts file, record first, so
every frame written has one. A sample that lands on a frame already taken (a short video asked for
more frames than it has) or past the last decodable frame (a header that overstates the length)
repeats the last decodable frame and is marked ``repeat``: no sample is lost.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Callable

from syphus.engine import samples
from syphus.release.convert import frames
from syphus.release.convert.encode import cv2, load_file
from syphus.engine.scenes import frame_id

Result = tuple[int, list[tuple[str, str]]]
_STATE: dict = {}


def init(parts: str, encoder: Callable, ignore_sigint: bool) -> None:
    """Set up this process: open the parts file for appending and keep the encoder."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    close()
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    _STATE.update(fd=os.open(parts, flags, 0o644), encoder=encoder,
                  frames_fd=os.open(os.path.join(os.path.dirname(parts), samples.PARTS_NAME), flags, 0o644))


def close() -> None:
    """Close the parts files (for a run in the main process)."""
    for key in ("fd", "frames_fd"):
        fd = _STATE.pop(key, None)
        if fd is not None:
            os.close(fd)


def _encode(img) -> str:
    return base64.b64encode(_STATE["encoder"](img)).decode("ascii")


def _append(image_id: str, b64: str) -> None:
    line = (json.dumps({"id": image_id, "base64": b64}) + "\n").encode("ascii")
    n = os.write(_STATE["fd"], line)
    if n != len(line):
        raise OSError(f"short write to the parts file ({n} of {len(line)} bytes)")


def _write(fd_key: str, line: bytes) -> None:
    n = os.write(_STATE[fd_key], line)
    if n != len(line):
        raise OSError(f"short write to the parts folder ({n} of {len(line)} bytes)")


def _append_frame(sample: samples.Sample, b64: str) -> None:
    _write("frames_fd", (json.dumps(sample.to_json()) + "\n").encode("ascii"))
    _append(sample.id, b64)


def image_task(items: list[tuple[str, str]]) -> Result:
    """Decode, encode and append each (id, path) of still images."""
    done, errors = 0, []
    for image_id, path in items:
        try:
            b64 = _encode(load_file(path))
        except (OSError, ValueError) as e:
            errors.append((path, str(e)))
            continue
        _append(image_id, b64)
        done += 1
    return done, errors


def video_task(path: str, picks: list[tuple[str, int]], video: str = "", asked: int = 0,
               vfps: float = 0.0, before: int = -1) -> Result:
    """Frames (id, frame index) of one video, indices increasing: seek to the first, grab forward.

    A pick on the frame just taken, or past the last frame that decodes, repeats the last decodable
    frame (found by stepping back when this task has none yet); each is recorded with its time.
    ``before`` is the frame index planned just before ``picks[0]`` (-1: none).
    """
    cv = cv2()
    cap = cv.VideoCapture(path)
    done, errors = 0, []
    last: tuple[int, str] | None = None  # (source index, base64) of the last frame decoded
    try:
        if not cap.isOpened():
            return 0, [(path, "not a video OpenCV can open")]
        pos = picks[0][1]
        if pos > 0:
            cap.set(cv.CAP_PROP_POS_FRAMES, pos)
        ended = False
        for image_id, index in picks:
            if last is None or last[0] != index:
                while not ended and pos < index:
                    if not cap.grab():
                        ended = True
                        break
                    pos += 1
                ok, frame = cap.read() if not ended and pos == index else (False, None)
                if ok and frame is not None:
                    pos += 1
                    last = (index, _encode(frame))
                else:
                    ended = True
                    if last is None:
                        last = _last_decodable(cv, path, index)
                    if last is None:
                        errors.append((path, "no frame could be decoded"))
                        break
            source, b64 = last
            t = source / vfps if vfps > 0 else 0.0
            _append_frame(samples.Sample(image_id, video, path, asked, t, source,
                                         source != index or index == before), b64)
            before = index
            done += 1
    finally:
        cap.release()
    return done, errors


def _last_decodable(cv, path: str, index: int, tries: int = 64) -> tuple[int, str] | None:
    """(index, base64) of the last frame before ``index`` that decodes, looking at most ``tries`` back."""
    for back in range(max(0, index - 1), max(-1, index - 1 - tries), -1):
        cap = cv.VideoCapture(path)
        try:
            if back > 0:
                cap.set(cv.CAP_PROP_POS_FRAMES, back)
            ok, frame = cap.read()
        finally:
            cap.release()
        if ok and frame is not None:
            return back, _encode(frame)
    return None


def video_sequential_task(path: str, scene: str, stem: str, fps: float | None, count: int | None,
                          skip: list[str]) -> Result:
    """For videos whose metadata lack the frame rate or count: read every frame in order.

    ``count`` frames evenly spaced (the video is read twice: to count, then to take them; a frame
    planned twice is taken once and repeated), or one frame every 1 / ``fps`` seconds by the frames'
    timestamps; ids in ``skip`` are done. Times come from the frames' timestamps.
    """
    cv = cv2()
    skipped = set(skip)
    done = 0

    def open_():
        cap = cv.VideoCapture(path)
        if not cap.isOpened():
            raise ValueError("not a video OpenCV can open")
        return cap

    def frames_in_order():  # (index, seconds, frame) of every frame that decodes
        cap = open_()
        vfps = cap.get(cv.CAP_PROP_FPS) or 0
        n = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                ms = cap.get(cv.CAP_PROP_POS_MSEC)
                yield n, (ms / 1000 if ms and ms > 0 else (n / vfps if vfps > 0 else n / 30.0)), frame  # 30 fps if nothing says
                n += 1
        finally:
            cap.release()

    def take(k: int, asked: int, index: int, t: float, b64: str, repeat: bool) -> None:
        nonlocal done
        image_id = frame_id(scene, stem, k)
        if image_id not in skipped:
            _append_frame(samples.Sample(image_id, stem, path, asked, t, index, repeat), b64)
            done += 1

    try:
        if count is not None:
            total = sum(1 for _ in frames_in_order())
            if total == 0:
                return 0, [(path, "no frame could be decoded")]
            plan = frames.even(total, count)
            k = 0
            for index, t, frame in frames_in_order():
                if k < len(plan) and plan[k] == index:
                    b64 = _encode(frame)
                    take(k, count, index, t, b64, False)
                    k += 1
                    while k < len(plan) and plan[k] == index:  # more samples than frames: repeat this one
                        take(k, count, index, t, b64, True)
                        k += 1
            return done, []
        k, n = 0, 0
        for index, t, frame in frames_in_order():
            n += 1
            if frames.due(t, k, fps):
                take(k, 0, index, t, _encode(frame), False)
                k += 1
        if n == 0:
            return 0, [(path, "no frame could be decoded")]
        return done, []
    except (OSError, ValueError) as e:
        return done, [(path, str(e))]
