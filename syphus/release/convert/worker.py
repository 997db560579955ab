"""Worker: the tasks an encoding process runs, and the state it keeps between them.

Every task decodes its inputs, encodes each image with the run's encoder and appends it to the
parts file as one line (a single ``os.write``, so lines from several processes never mix), then
returns ``(images written, [(path, why it was skipped)])``. The main process never sees image
data. The tasks are module-level functions, so they pickle for a process pool.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Callable

from syphus.release.convert import frames
from syphus.release.convert.encode import cv2, load_file
from syphus.release.scenes import frame_id

Result = tuple[int, list[tuple[str, str]]]
_STATE: dict = {}


def init(parts: str, encoder: Callable, ignore_sigint: bool) -> None:
    """Set up this process: open the parts file for appending and keep the encoder."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    close()
    _STATE.update(fd=os.open(parts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644), encoder=encoder)


def close() -> None:
    """Close the parts file (for a run in the main process)."""
    fd = _STATE.pop("fd", None)
    if fd is not None:
        os.close(fd)


def _encode(img) -> str:
    return base64.b64encode(_STATE["encoder"](img)).decode("ascii")


def _append(image_id: str, b64: str) -> None:
    line = (json.dumps({"id": image_id, "base64": b64}) + "\n").encode("ascii")
    n = os.write(_STATE["fd"], line)
    if n != len(line):
        raise OSError(f"short write to the parts file ({n} of {len(line)} bytes)")


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


def video_task(path: str, picks: list[tuple[str, int]]) -> Result:
    """Frames (id, frame index) of one video, indices increasing: seek to the first, grab forward."""
    cv = cv2()
    cap = cv.VideoCapture(path)
    done, errors = 0, []
    try:
        if not cap.isOpened():
            return 0, [(path, "not a video OpenCV can open")]
        pos = picks[0][1]
        if pos > 0:
            cap.set(cv.CAP_PROP_POS_FRAMES, pos)
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
            _append(image_id, _encode(frame))
            done += 1
    finally:
        cap.release()
    return done, errors


def video_sequential_task(path: str, scene: str, stem: str, fps: float | None, count: int | None,
                          skip: list[str]) -> Result:
    """For videos whose metadata lack the frame rate or count: read every frame in order.

    ``count`` frames evenly spaced (the video is read twice: to count, then to take them), or
    one frame every 1 / ``fps`` seconds by the frames' timestamps; ids in ``skip`` are done.
    """
    cv = cv2()
    skipped = set(skip)
    done = 0

    def open_():
        cap = cv.VideoCapture(path)
        if not cap.isOpened():
            raise ValueError("not a video OpenCV can open")
        return cap

    try:
        if count is not None:
            cap = open_()
            total = 0
            while cap.grab():
                total += 1
            cap.release()
            if total == 0:
                return 0, [(path, "no frame could be decoded")]
            cap, pos = open_(), 0
            for k, index in enumerate(frames.even(total, count)):
                while pos < index and cap.grab():
                    pos += 1
                ok, frame = cap.read()
                if not ok:
                    break
                pos += 1
                image_id = frame_id(scene, stem, k)
                if image_id not in skipped:
                    _append(image_id, _encode(frame))
                    done += 1
            cap.release()
            return done, []
        cap = open_()
        vfps = cap.get(cv.CAP_PROP_FPS) or 0
        k, n = 0, 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            ms = cap.get(cv.CAP_PROP_POS_MSEC)
            t = ms / 1000 if ms and ms > 0 else (n / vfps if vfps > 0 else n / 30.0)  # 30 fps if nothing says
            n += 1
            if frames.due(t, k, fps):
                image_id = frame_id(scene, stem, k)
                if image_id not in skipped:
                    _append(image_id, _encode(frame))
                    done += 1
                k += 1
        cap.release()
        if n == 0:
            return 0, [(path, "no frame could be decoded")]
        return done, []
    except (OSError, ValueError) as e:
        return done, [(path, str(e))]
