"""Encode: a decoded image -> the bytes of the square PNG or JPEG a release image file stores.

``Encoder`` is the default; ``convert(..., encoder=...)`` takes any picklable callable with the
same signature (image array -> bytes), e.g. one that is slow or fails, for tests.

>>> import numpy as np
>>> png = Encoder(Settings(size=8))(np.zeros((4, 6, 3), np.uint8))
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", load(png).shape
(True, (8, 8, 3))
"""

from __future__ import annotations

from dataclasses import dataclass

from syphus.errors import UserError

CV2_HINT = "pip install 'syphus[images]' (opencv-python-headless)"
FORMATS = ("png", "jpeg")


def cv2():
    """The cv2 module, or a UserError naming the package to install."""
    try:
        import cv2 as module
    except ImportError:
        raise UserError(f"syphus convert needs OpenCV: {CV2_HINT}") from None
    return module


@dataclass(frozen=True)
class Settings:
    """What every output image is: ``size`` x ``size`` pixels, ``fmt`` png or jpeg, stretched to
    the square or (``keep_aspect``) fitted inside it and padded with black."""

    size: int = 224
    fmt: str = "png"
    keep_aspect: bool = False

    def check(self) -> None:
        if self.size < 1 or self.fmt not in FORMATS:
            raise UserError("--size must be positive and --format png or jpeg")


@dataclass(frozen=True)
class Encoder:
    """A decoded BGR image (numpy array) -> PNG or JPEG bytes, resized per ``settings``."""

    settings: Settings = Settings()

    def __call__(self, img) -> bytes:
        cv = cv2()
        import numpy as np
        s = self.settings.size
        h, w = img.shape[:2]
        if self.settings.keep_aspect:
            scale = min(s / w, s / h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        else:
            nw = nh = s
        interp = cv.INTER_AREA if nw * nh < w * h else cv.INTER_LINEAR
        out = cv.resize(img, (nw, nh), interpolation=interp)
        if (nw, nh) != (s, s):
            canvas = np.zeros((s, s, 3), dtype=out.dtype)
            y, x = (s - nh) // 2, (s - nw) // 2
            canvas[y:y + nh, x:x + nw] = out
            out = canvas
        ok, buf = cv.imencode(".png" if self.settings.fmt == "png" else ".jpg", out)
        if not ok:
            raise ValueError(f"could not encode as {self.settings.fmt}")
        return buf.tobytes()


def load(data: bytes):
    """The bytes of an image file -> a decoded BGR image; ValueError if OpenCV cannot decode them."""
    cv = cv2()
    import numpy as np
    array = np.frombuffer(data, dtype=np.uint8)
    img = cv.imdecode(array, cv.IMREAD_COLOR) if array.size else None
    if img is None:
        raise ValueError("not an image OpenCV can decode")
    return img


def load_file(path: str):
    """An image file -> a decoded BGR image (OSError if unreadable, ValueError if not an image)."""
    with open(path, "rb") as f:
        return load(f.read())
