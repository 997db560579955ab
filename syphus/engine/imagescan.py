"""Where each image of a JSON release image file is, without decoding any: the file's bytes scanned a
chunk at a time for each member of its ``{image id: base64}`` object, giving the id and the byte
offset and length of its value (``engine/imageindex`` keeps them in its index). Any malformation
is one UserError naming the file and the byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from syphus.errors import UserError

WS = b" \t\r\n"
_STRUCT = re.compile(rb'[\[\]{}"]')
_SCALAR_END = re.compile(rb"[,}\]\s]")


class _Scan:
    """A file's bytes a chunk at a time; what is before ``pos`` is dropped on the next read."""

    def __init__(self, f, name: str, chunk: int):
        self.f, self.name, self.chunk = f, name, chunk
        self.buf, self.base, self.pos, self.eof = b"", 0, 0, False

    def offset(self) -> int:
        return self.base + self.pos

    def more(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.base += self.pos
        self.buf, self.pos = self.buf[self.pos:] + data, 0
        return True

    def fail(self, what: str) -> UserError:
        return UserError(f"{self.name}: not a JSON object of image id -> base64: {what} at byte {self.offset()}; "
                         "the file may be cut short or not an image file")

    def peek(self) -> int | None:
        """The next byte that is not white space (not consumed), None at the end of the file."""
        while True:
            buf, p = self.buf, self.pos
            while p < len(buf) and buf[p] in WS:
                p += 1
            self.pos = p
            if p < len(buf):
                return buf[p]
            if not self.more():
                return None

    def string(self, keep: bool) -> bytes | None:
        """Consume the JSON string at ``pos``; the raw bytes between its quotes when ``keep``."""
        pieces: list[bytes] = []
        self.pos += 1
        seg = self.pos
        while True:
            buf = self.buf
            quote = buf.find(b'"', self.pos)
            slash = buf.find(b"\\", self.pos, len(buf) if quote < 0 else quote)
            if slash >= 0:
                if slash + 1 < len(buf):
                    self.pos = slash + 2  # an escape: its next byte is never the closing quote
                    continue
                stop = slash  # the escaped byte is in the next chunk
            elif quote >= 0:
                self.pos = quote + 1
                return b"".join(pieces) + buf[seg:quote] if keep else None
            else:
                stop = len(buf)
            if keep:
                pieces.append(buf[seg:stop])
            self.pos = stop
            if not self.more():
                raise self.fail("a string that never ends")
            seg = self.pos

    def nested(self) -> None:
        """Consume the object or array at ``pos`` (strings in it may hold brackets)."""
        depth = 0
        while True:
            m = _STRUCT.search(self.buf, self.pos)
            if m is None:
                self.pos = len(self.buf)
                if not self.more():
                    raise self.fail("an object or array that never ends")
                continue
            self.pos = m.start()
            ch = self.buf[self.pos]
            if ch == 0x22:
                self.string(False)
                continue
            self.pos += 1
            depth += 1 if ch in b"{[" else -1
            if depth == 0:
                return

    def scalar(self) -> None:
        """Consume a number, true, false or null, checked as JSON."""
        pieces = []
        while True:
            m = _SCALAR_END.search(self.buf, self.pos)
            stop = m.start() if m else len(self.buf)
            pieces.append(self.buf[self.pos:stop])
            self.pos = stop
            if m or not self.more():
                break
        try:
            json.loads(b"".join(pieces))
        except ValueError:
            raise self.fail("a value that is not JSON") from None

    def value(self) -> tuple[int, int]:
        """Consume one JSON value; (file offset, length) of its text."""
        c = self.peek()
        start = self.offset()
        if c == 0x22:
            self.string(False)
        elif c is not None and c in b"{[":
            self.nested()
        elif c is None or c in b",}":
            raise self.fail("a value is missing")
        else:
            self.scalar()
        return start, self.offset() - start


def json_entries(path: Path, chunk: int = 1 << 20) -> Iterator[tuple[str, int, int]]:
    """(image id, offset, length of its value's JSON text) for each member of a ``{id: base64}`` file,
    read ``chunk`` bytes at a time."""
    with path.open("rb") as f:
        s = _Scan(f, str(path), chunk)
        s.more()
        if s.buf.startswith(b"\xef\xbb\xbf"):
            s.pos = 3
        if s.peek() != 0x7B:
            raise s.fail("expected '{'")
        s.pos += 1
        c = s.peek()
        while c != 0x7D:
            if c != 0x22:
                raise s.fail("expected a quoted image id")
            raw = s.string(True)
            try:
                key = json.loads(b'"' + raw + b'"')
                key.encode("utf-8")  # a lone surrogate escape is valid JSON but no text
            except ValueError:  # UnicodeError is one
                raise s.fail(f"an image id that is not a valid JSON string ({raw[:60]!r})") from None
            if s.peek() != 0x3A:
                raise s.fail(f"expected ':' after the image id {key!r}")
            s.pos += 1
            start, length = s.value()
            yield key, start, length
            c = s.peek()
            if c == 0x2C:
                s.pos += 1
                c = s.peek()
                if c == 0x7D:
                    raise s.fail("a trailing comma")
            elif c != 0x7D:
                raise s.fail(f"expected ',' or '}}' after the image {key!r}")
        s.pos += 1
        if s.peek() is not None:
            raise s.fail("more text after the closing '}'")
