"""JSON streams: the members of one big JSON object, read or written a piece at a time.

MIMIC-IT release files are single JSON objects of hundreds of megabytes
(``{"meta": {...}, "data": {"DC_INS_00001": {...}, ...}}``, ``{image id: base64}``).
``iter_members`` yields their members one by one, holding one member in
memory, and names the file, line and column when the text is not JSON;
``ObjectWriter`` writes such a file one member at a time.

>>> import io
>>> list(iter_members(io.StringIO('{"meta": {"v": 1}, "data": {"a": [1], "b": 2}}'), within="data"))
[('a', [1]), ('b', 2)]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from syphus.durable import AtomicFile
from syphus.errors import UserError

_CHUNK = 1 << 20
_WS = " \t\r\n"


class _Reader:
    """A text buffer over a file that grows on demand and forgets what was consumed."""

    def __init__(self, f: IO[str], name: str):
        self.f, self.name = f, name
        self.buf, self.pos = "", 0
        self.line_base = 1  # line number of buf[0]
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.f.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        if self.pos > _CHUNK:
            self.line_base += self.buf.count("\n", 0, self.pos)
            self.buf, self.pos = self.buf[self.pos:], 0
        self.buf += chunk
        return True

    def where(self, pos: int | None = None) -> str:
        pos = self.pos if pos is None else pos
        line = self.line_base + self.buf.count("\n", 0, pos)
        col = pos - (self.buf.rfind("\n", 0, pos) + 1) + 1
        return f"{self.name}:{line}:{col}"

    def fail(self, what: str, pos: int | None = None) -> UserError:
        return UserError(f"{self.where(pos)}: not valid JSON ({what}); the file may be cut short or edited by hand")

    def peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            got = self.peek() or "end of file"
            raise self.fail(f"expected {char!r}, found {got!r}")
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # an incomplete value at the end of the buffer: read more and try again
                if self._more():
                    continue
                raise self.fail(e.msg, e.pos) from None
            if end == len(self.buf) and not self.eof and isinstance(value, (int, float)):
                if self._more():  # a number may go on in the next chunk
                    continue
            self.pos = end
            return value


def _members(r: _Reader) -> Iterator[tuple[str, Any]]:
    r.expect("{")
    if r.peek() == "}":
        r.pos += 1
        return
    while True:
        if r.peek() != '"':
            raise r.fail("expected a quoted key")
        key = r.value()
        r.expect(":")
        yield key, r
        nxt = r.peek()
        r.pos += 1
        if nxt == "}":
            return
        if nxt != ",":
            raise r.fail(f"expected ',' or '}}' after the member {key!r}", r.pos - 1)


def iter_members(source: str | Path | IO[str], within: str | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` for each member of the top-level object, or of its member ``within``."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            f = path.open("r", encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{path}: file not found") from None
        name = str(path)
    else:
        f, name = source, getattr(source, "name", "<stream>")
    try:
        r = _Reader(f, name)
        found = within is None
        for key, reader in _members(r):
            if within is not None and key != within:
                reader.value()  # skip it (meta is small)
                continue
            if within is not None:
                found = True
                if r.peek() != "{":
                    raise r.fail(f"'{within}' must be an object of id -> entry")
                for inner_key, inner in _members(r):
                    yield inner_key, inner.value()
            else:
                yield key, reader.value()
        if not found:
            raise UserError(f"{name}: no top-level '{within}' object; is this the right kind of file?")
    except UnicodeDecodeError as e:
        raise UserError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start} of a chunk)") from None
    finally:
        if isinstance(source, (str, Path)):
            f.close()


def read_first(source: str | Path, key: str) -> Any:
    """The value of the top-level member ``key`` if it comes first in the file (as ``meta`` does), else None.

    Nothing after the first member is read, so a huge ``data`` member is never decoded here.
    """
    path = Path(source)
    with path.open("r", encoding="utf-8") as f:
        r = _Reader(f, str(path))
        for k, reader in _members(r):
            return reader.value() if k == key else None
    return None


class ObjectWriter:
    """A JSON object file written one member at a time: ``{"meta": ..., "data": {k: v, ...}}`` when
    given ``meta``, else a bare ``{k: v, ...}``. It goes to ``<path>.tmp`` and replaces ``path`` on close.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "DC_train.json"
    >>> w = ObjectWriter(path, None); w.add("DC_INS_00001", ["DC_INS_00002"]); w.close()
    >>> path.read_text()
    '{\\n"DC_INS_00001": ["DC_INS_00002"]\\n}\\n'
    """

    def __init__(self, path: Path, meta: dict[str, Any] | None):
        self.path = path
        self._out = AtomicFile(path, sync=False)  # synced under export's commit marker
        self.f = self._out.file
        self.first = True
        self.wrapped = meta is not None
        if self.wrapped:
            self.f.write('{"meta": ' + json.dumps(meta, ensure_ascii=False) + ', "data": {')
        else:
            self.f.write("{")

    def add(self, key: str, value: Any) -> None:
        self.f.write(("\n" if self.first else ",\n") + json.dumps(key) + ": " + json.dumps(value, ensure_ascii=False))
        self.first = False

    def close(self) -> None:
        self.f.write("\n}}\n" if self.wrapped else "\n}\n")
        self._out.commit()
