"""Text files the user writes (configs, the pricing table, prompt files, an edited answer), read as UTF-8.

Editors on some systems save UTF-16 (Windows' "Unicode"), or UTF-8 with a byte-order mark, or a
legacy code page. ``read_text`` takes UTF-8 with or without the mark; anything else is one
``UserError`` naming the file, what the file is for, the encoding it seems to be in and the fix,
never a ``UnicodeDecodeError`` from deep inside a parser. Errors opening the file (``OSError``) are
left to the caller, which knows what a missing file means.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "run.yaml")
>>> _ = open(path, "wb").write("num_threads: 2\\n".encode("utf-16"))
>>> read_text(path, "config file")                                      # doctest: +ELLIPSIS
Traceback (most recent call last):
...
syphus.errors.UserError: ...run.yaml: the config file is UTF-16 text (it starts with a UTF-16 byte-order mark), ...
>>> _ = open(path, "wb").write(b"\\xef\\xbb\\xbfnum_threads: 2\\n"); read_text(path, "config file")
'num_threads: 2\\n'
"""

from __future__ import annotations

import codecs
from pathlib import Path

from syphus.errors import UserError

_MARKS = (  # longest first: UTF-32's little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_text(path: str | Path, what: str) -> str:
    """The text of the file at ``path`` (UTF-8, a leading byte-order mark dropped); ``what`` names it in errors."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: the {what} is {_guess(data, e.start)}; save it as UTF-8 (in most editors: "
                        "Save As, encoding UTF-8; or iconv -t UTF-8)") from None
    if "\0" in text:  # valid UTF-8 only by accident: UTF-16 of ASCII text without its mark
        raise UserError(f"{path}: the {what} is {_guess(data, data.index(0))}; save it as UTF-8 (in most "
                        "editors: Save As, encoding UTF-8; or iconv -t UTF-8)")
    return text


def _guess(data: bytes, at: int) -> str:
    """What the bytes look like (``at``: the first that does not fit), for the message."""
    for mark, name in _MARKS:
        if data.startswith(mark):
            return f"{name} text (it starts with a {name} byte-order mark), not UTF-8"
    if data[:200].count(0) * 4 >= min(len(data), 200):  # every other byte zero: UTF-16 without its mark
        return "UTF-16 text without a byte-order mark (every other byte is zero), not UTF-8"
    line = data.count(b"\n", 0, at) + 1
    return (f"not UTF-8 text (byte 0x{data[at]:02x} on line {line}: a legacy code page such as Windows-1252?)")
