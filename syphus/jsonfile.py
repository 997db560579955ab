"""The annotation-file readers for plugins: a JSON document (``load_json``) or a JSON-lines file
read a line at a time (``iter_jsonl``), as UTF-8; every problem is one UserError naming the file
and, where it has one, the line (``NotUTF8`` for a file that is not UTF-8 text).

Plugins import them from ``syphus.dataset`` (or ``abstract_dataset``), where they stay importable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from syphus.errors import UserError

_KINDS = {dict: "a JSON object", list: "a JSON list"}


class NotUTF8(UserError):
    """An annotation file that is not UTF-8 text, with where: ``path`` and, when known, ``line`` (from 1).

    ``iter_jsonl`` raises it naming the line; the check before a run counts it as a non-UTF-8 input.
    """

    def __init__(self, message: str, path: Any = None, line: int | None = None):
        super().__init__(message)
        self.path, self.line = path, line


def _unreadable(path: Any, what: str, e: OSError | UnicodeDecodeError,
                at: tuple[int, int] | None = None) -> UserError:
    """The UserError for a file that cannot be read; ``at`` is (line, byte in the line) of a decoding error."""
    if isinstance(e, UnicodeDecodeError):
        where = f"{path}:{at[0]}" if at else f"{path}"
        byte = f" at byte {at[1]} of the line" if at else ""
        return NotUTF8(f"{where}: cannot read the {what} (not UTF-8 text: {e.reason}{byte}); save it as UTF-8, "
                       "or check query_inputs_path or pass -in", path, at[0] if at else None)
    return UserError(f"{path}: cannot read the {what} ({e.strerror or str(e)}); check query_inputs_path or pass -in")


def load_json(path: Any, what: str = "annotation file", expect: type | None = None) -> Any:
    """Read the whole JSON document at ``path``; any problem becomes a UserError naming the file.

    ``what`` names the file in messages; ``expect`` (``dict`` or ``list``), when given, is the type the
    top-level value must have. For use in ``_load_query_inputs``::

        from syphus.dataset import AbstractDataset, load_json

        def _load_query_inputs(self, path):
            videos = load_json(path, "captions file", expect=dict)  # {video id: [caption, ...]}
            for video_id, captions in videos.items():
                yield {"id": video_id, "sentences": "\\n".join(captions)}

    A missing file gives ``<path>: cannot read the captions file (No such file or directory); ...``,
    a syntax error ``<path>:<line>:<column>: the captions file is not valid JSON (<why>)``.
    """
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except OSError as e:
        raise _unreadable(path, what, e) from None
    except UnicodeDecodeError as e:
        raise _unreadable(path, what, e, first_undecodable_line(path)) from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}:{e.colno}: the {what} is not valid JSON ({e.msg})") from None
    if expect is not None and not isinstance(value, expect):
        kind = _KINDS.get(expect, f"a {expect.__name__}")
        raise UserError(f"{path}: expected {kind} in the {what}, found {type(value).__name__}")
    return value


def iter_jsonl(path: Any, what: str = "annotation file") -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each non-blank line of the JSON-lines file at ``path``.

    Lines are read one at a time (the file never sits in memory whole) and numbered from 1, blank
    lines skipped; errors are UserErrors as in ``load_json``, a bad line named ``<path>:<line>:<column>``
    (a line that is not UTF-8 too: ``NotUTF8``, with ``path`` and ``line``).
    Use the line number in your own messages about a record::

        from syphus.dataset import AbstractDataset, iter_jsonl
        from syphus.errors import UserError

        def _load_query_inputs(self, path):
            for n, row in iter_jsonl(path, "captions file"):
                if not isinstance(row, dict) or "video_id" not in row:
                    raise UserError(f"{path}: line {n} has no 'video_id'")
                yield {"id": row["video_id"], "sentences": "\\n".join(row["captions"])}
    """
    for n, line in _utf8_lines(path, what):
        if not line.strip():
            continue
        try:
            value = json.loads(line.rstrip("\r\n"))  # without the newline, so a column stays on its line
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}:{e.colno}: the {what} is not valid JSON ({e.msg})") from None
        yield n, value


def _utf8_lines(path: Any, what: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of the file at ``path``, each decoded alone so a bad one is named."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise _unreadable(path, what, e) from None
    with f:
        numbered = enumerate(f, 1)
        while True:
            try:
                n, raw = next(numbered)
            except StopIteration:
                return
            except OSError as e:
                raise _unreadable(path, what, e) from None
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _unreadable(path, what, e, (n, e.start + 1)) from None


def first_undecodable_line(path: Any) -> tuple[int, int] | None:
    """``(line, byte)`` (both from 1) of the first line of the file at ``path`` that is not UTF-8, or None.

    Used to say where a plugin's bare ``UnicodeDecodeError`` came from when ``path`` is a file.
    """
    try:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    return n, e.start + 1
    except (OSError, TypeError, ValueError):
        return None
    return None
