"""Frames: which frames of a video to take, at a rate (``--fps``, below 1 too) or N evenly spaced.

Sample k is the frame at t = k / fps and gets frame number k in its id. From the video's own
rate and frame count (``probe``) the frame indices are planned up front; a video whose
metadata lack them is read in order and sampled by timestamp (``due``).

>>> plan(10, 35, fps=1, frames=None), plan(10, 35, fps=0.5, frames=None)   # 10 fps, 3.5 s
([0, 10, 20, 30], [0, 20])
>>> plan(10, 35, fps=None, frames=5), even(3, 5)
([0, 8, 17, 26, 34], [0, 0, 1, 2, 2])
"""

from __future__ import annotations

import math
from pathlib import Path

from syphus.release.convert.encode import cv2


def even(count: int, n: int) -> list[int]:
    """``n`` evenly spaced frame indices over ``count`` frames (repeats when n > count)."""
    if n == 1:
        return [0]
    return [round(i * (count - 1) / (n - 1)) for i in range(n)]


def plan(vfps: float, count: int, fps: float | None, frames: int | None) -> list[int]:
    """Frame indices to take (position k -> frame k of the ids) from the video's rate and frame count."""
    if frames is not None:
        return even(count, frames)
    n = max(1, math.ceil(count * fps / vfps - 1e-9))
    return [min(count - 1, round(k * vfps / fps)) for k in range(n)]


def due(t: float, k: int, fps: float) -> bool:
    """Whether the frame shown at ``t`` seconds is sample ``k`` (read in order: the first frame at or after k / fps).

    >>> [due(t, 1, 0.5) for t in (1.9, 2.0)]
    [False, True]
    """
    return k == 0 or t + 1e-6 >= k / fps


def probe(path: Path) -> tuple[float, int]:
    """(frames per second, frame count) from a video's metadata; 0 for what it lacks; (-1, -1) if it will not open."""
    cv = cv2()
    cap = cv.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return -1.0, -1
        fps, count = cap.get(cv.CAP_PROP_FPS), cap.get(cv.CAP_PROP_FRAME_COUNT)
    finally:
        cap.release()

    def ok(x) -> bool:
        return x is not None and math.isfinite(x) and x > 0

    return (fps if ok(fps) else 0.0), (int(count) if ok(count) else 0)
