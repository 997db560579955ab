"""Image index: single images looked up by id in a release image file of many GB, in flat memory.

``ImageIndex.open(path)`` indexes a release image file once and then reads just the images asked
for. The index is an SQLite file, next to the image file (``DC.json.index.sqlite``) or in
``cache_dir``, reused while the image file keeps its size and mtime, rebuilt when either changes
(into a temporary file that replaces the old one when complete, so a crash leaves no half index).

- ``XX.json`` (``{image id: base64, ...}``, one line or pretty-printed): one streaming pass over the
  bytes records where each value starts and how long it is; a lookup seeks and reads that value.
- ``XX.parquet`` (the trainer's form: the id is the pandas index, the image a ``base64`` column):
  only the id column is read, one row group at a time, to map id -> (row group, row); a lookup
  reads the image column of that one row group, and a small LRU keeps the last few groups
  (bounded in count and bytes). ``read_group`` is injectable, and ``groups_read`` counts its calls.

Memory holds one chunk of the file (or one id column) while indexing, and the LRU while looking
up, whatever the size of the file. The format is told by the bytes (``PAR1`` or ``{``), not the name.

One image per id, one rule everywhere: an id that the file holds more than once is ambiguous
(``json.load`` and pandas' ``.loc`` would take different copies), so ``open`` refuses such a file
with a ``UserError`` naming the repeated ids; ``open(..., allow_repeats=True)`` (what ``validate``
uses) opens it to list them with ``repeated()``, and a lookup of a repeated id still raises.
A value that is no image (bad base64, null, a number) is not "missing": looking it up raises
``BadImage`` (an ``ItemError``: the query that needs it fails, naming the file and the id).

>>> import json, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "VST.json"
>>> _ = path.write_text(json.dumps({"VST_IMG_2": "aGk=", "VST_IMG_1": "R0lGODlh"}))
>>> with ImageIndex.open(path) as index:
...     index.get("VST_IMG_1"), "VST_IMG_2" in index, index.missing(["VST_IMG_1", "VST_IMG_9"]), len(index)
(b'GIF89a', True, ['VST_IMG_9'], 2)
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from syphus.durable import swap_in
from syphus.errors import UserError
from syphus.engine import parquet
from syphus.engine.imagescan import WS, json_entries
from syphus.engine.imagevalues import (BadImage, JsonValues, ParquetValues, ReadGroup, guarded, parquet_file,
                                       read_row_group)

INDEX_VERSION = "2"  # 2: ids counts the copies of each id (n)
SUFFIX = ".index.sqlite"
CHUNK = 1 << 20
BATCH = 2048  # ids written to the index per executemany
QUERY = 500  # ids asked of the index per statement (missing)
CACHE_GROUPS = 4
CACHE_BYTES = 128 << 20

SHOWN = 5  # repeated ids named in an error


def _columns(path: Path, schema) -> tuple[str, str]:
    """(id column, image column) of a Parquet image file, as ``syphus.engine.parquet`` reads them."""
    names = schema.names
    id_column = parquet.index_column(schema) or next((c for c in parquet.ID_COLUMNS if c in names), None)
    image = next((c for c in parquet.IMAGE_COLUMNS if c in names), None)
    if id_column is None or image is None:
        raise UserError(f"{path}: not a release image file: it needs an id column (the pandas index, or one of "
                        f"{', '.join(parquet.ID_COLUMNS)}) and an image column (one of "
                        f"{', '.join(parquet.IMAGE_COLUMNS)}); its columns are {names}")
    return id_column, image


def _parquet_entries(pf, id_column: str, read_group: ReadGroup) -> Iterator[tuple[str, int, int]]:
    """(image id, row group, row) for each row, reading only the id column, one row group at a time."""
    for group in range(pf.num_row_groups):
        for row, value in enumerate(read_group(pf, group, [id_column]).column(0).to_pylist()):
            if value is not None:
                yield str(value), group, row


def _kind(path: Path) -> str:
    """'json' or 'parquet', from the first bytes; a UserError naming the file otherwise."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        raise UserError(f"{path}: image file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, not an image file (XX.json or XX.parquet)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the image file ({e.strerror or e})") from None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.removeprefix(b"\xef\xbb\xbf").lstrip(WS).startswith(b"{"):
        return "json"
    what = "an empty file" if not head.strip() else f"a file starting {head[:12]!r}"
    raise UserError(f"{path}: {what}, neither a JSON object of image id -> base64 (XX.json) nor Parquet "
                    "(XX.parquet); pass the release image file that syphus convert writes")


def _index_paths(path: Path, cache_dir: str | Path | None) -> list[Path]:
    """Where the index of ``path`` may be, preferred first: in ``cache_dir``; else next to the file,
    then in the temp dir (for a file in a folder that cannot be written)."""
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:12]  # names are not unique
    elsewhere = f"{path.name}.{digest}{SUFFIX}"
    if cache_dir is not None:
        return [Path(cache_dir) / elsewhere]
    return [path.parent / (path.name + SUFFIX), Path(tempfile.gettempdir()) / "syphus-imageindex" / elsewhere]


def _writable(index_paths: list[Path]) -> Path:
    """Where to build the index: the first of ``index_paths`` in a folder that can be written, else
    the last one, its folder created (if that cannot be written either, building says so)."""
    for index_path in index_paths[:-1]:
        if os.access(index_path.parent, os.W_OK):
            return index_path
    folder = index_paths[-1].parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{folder}: cannot create the image index folder ({e.strerror or e}); "
                        "pass another cache_dir") from None
    return index_paths[-1]


def _stamp(path: Path, kind: str) -> dict[str, str]:
    st = path.stat()
    return {"version": INDEX_VERSION, "kind": kind, "size": str(st.st_size), "mtime_ns": str(st.st_mtime_ns)}


def _current(index_path: Path, stamp: dict[str, str]) -> sqlite3.Connection | None:
    """The index at ``index_path`` opened read-only if it was built from this very file, else None."""
    if not index_path.is_file():
        return None
    db = None
    try:
        # immutable: an index is never written once in place (a rebuild swaps a new file in), so SQLite
        # may skip the file locks and journal checks it makes for every statement
        db = sqlite3.connect(index_path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True,
                             check_same_thread=False)
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta.get("complete") == "1" and all(meta.get(k) == v for k, v in stamp.items()):
            return db
    except sqlite3.Error:
        pass  # not an index, or a damaged one: built again
    if db is not None:
        db.close()
    return None


def _build(index_path: Path, stamp: dict[str, str], entries: Iterator[tuple[str, int, int]]) -> None:
    """Write the index of ``entries`` to a temporary file, then put it in place."""
    tmp = index_path.with_name(f"{index_path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(tmp)
    except sqlite3.Error as e:
        raise UserError(f"{tmp}: cannot write the image index ({e}); pass another cache_dir") from None
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        # a, b: byte offset and length of the value (JSON), or row group and row (Parquet) of the first
        # copy; n: how many copies the file holds (more than one: refused, see the module docstring)
        db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY, a INTEGER NOT NULL, b INTEGER NOT NULL, "
                   "n INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID")
        while True:
            batch = [row for _, row in zip(range(BATCH), entries)]
            if not batch:
                break
            db.executemany("INSERT INTO ids (id, a, b) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET n = n + 1",
                           batch)
        count = db.execute("SELECT COUNT(*) FROM ids").fetchone()[0]
        repeated = db.execute("SELECT COUNT(*) FROM ids WHERE n > 1").fetchone()[0]
        db.executemany("INSERT INTO meta VALUES (?, ?)", [*stamp.items(), ("count", str(count)),
                                                         ("repeated", str(repeated)), ("complete", "1")])
        db.commit()
    except BaseException:
        db.close()
        tmp.unlink(missing_ok=True)
        raise
    db.close()
    swap_in(tmp, index_path)


class ImageIndex:
    """Images of one release image file, looked up by id (see the module's docstring).

    ``get`` returns the image's bytes (decoded from base64), None for an id the file lacks,
    ``BadImage`` for an id whose value is no image or that the file repeats;
    ``get_many`` does the same for many ids, reading each row group once. Safe to share between
    threads (one lookup at a time). ``built`` says whether this open (re)built the index.
    """

    def __init__(self, path: Path, kind: str, db: sqlite3.Connection, values, index_path: Path, built: bool):
        self.path, self.kind, self.index_path, self.built = path, kind, index_path, built
        self._db, self._values = db, values
        self._lock = threading.Lock()
        self._count = int(db.execute("SELECT value FROM meta WHERE key = 'count'").fetchone()[0])
        self._repeated = int(db.execute("SELECT value FROM meta WHERE key = 'repeated'").fetchone()[0])

    @classmethod
    def open(cls, path: str | Path, cache_dir: str | Path | None = None, *, cache_groups: int = CACHE_GROUPS,
             cache_bytes: int = CACHE_BYTES, read_group: ReadGroup | None = None,
             allow_repeats: bool = False) -> "ImageIndex":
        """Index ``path`` (or reuse its index) and open it for lookups.

        ``cache_dir``: where the index goes (default: next to the file, or the temp dir when that
        folder is read-only; an index already next to the file is used either way). Parquet only: at most ``cache_groups`` row groups and ``cache_bytes``
        of image column are kept (always the last one read); ``read_group(parquet_file, group,
        columns) -> pyarrow.Table`` reads a row group (default ``read_row_group``). A file that holds
        an id more than once is refused (a ``UserError`` naming them) unless ``allow_repeats``.
        """
        p = Path(path)
        kind = _kind(p)
        stamp = _stamp(p, kind)
        paths = _index_paths(p, cache_dir)
        pf = columns = reader = None
        if kind == "parquet":
            pf = parquet_file(p)
            columns = _columns(p, pf.schema_arrow)
            reader = guarded(p, read_group or read_row_group)
        index_path, db = next(((i, db) for i in paths if (db := _current(i, stamp)) is not None), (None, None))
        built = db is None
        if built:
            index_path = _writable(paths)
            if kind == "json":
                entries = json_entries(p, CHUNK)
            else:
                entries = _parquet_entries(pf, columns[0], reader)
            _build(index_path, stamp, entries)
            if _stamp(p, kind) != stamp:
                raise UserError(f"{p}: the image file changed while it was being indexed; open it again")
            db = _current(index_path, stamp)
        if kind == "json":
            values = JsonValues(p)
        else:
            values = ParquetValues(p, pf, columns[1], reader, cache_groups, cache_bytes)
        index = cls(p, kind, db, values, index_path, built)
        if index._repeated and not allow_repeats:
            repeats = index.repeated(SHOWN)
            index.close()
            shown = ", ".join(f"{i!r} ({n} copies)" for i, n in repeats)
            more = f" and {index._repeated - len(repeats)} more" if index._repeated > len(repeats) else ""
            raise UserError(f"{p}: {index._repeated} image id(s) appear more than once: {shown}{more}; one image "
                            "per id: keep one copy of each (syphus convert writes each id once), then run again")
        return index

    def repeated(self, limit: int = 100_000) -> list[tuple[str, int]]:
        """(id, copies) of each id the file holds more than once, in id order; at most ``limit``."""
        if not self._repeated:
            return []
        with self._lock:
            return [(i, n) for i, n in self._db.execute("SELECT id, n FROM ids WHERE n > 1 ORDER BY id LIMIT ?",
                                                        (limit,))]

    @property
    def groups_read(self) -> int:
        """Parquet: how many row groups' image columns were read so far (0 for JSON)."""
        return getattr(self._values, "groups_read", 0)

    def _where(self, image_id: str) -> tuple[int, int] | None:
        try:
            row = self._db.execute("SELECT a, b, n FROM ids WHERE id = ?", (image_id,)).fetchone()
        except UnicodeEncodeError:  # an id with a lone surrogate: in no index
            return None
        return self._checked(image_id, row)

    def _places(self, ids: list[str]) -> dict[str, tuple[int, int, int]]:
        """(a, b, n) of each of ``ids`` the index holds, asked in one statement per ``QUERY`` ids
        (a query's frames: one statement instead of one an image)."""
        found: dict[str, tuple[int, int, int]] = {}
        for k in range(0, len(ids), QUERY):
            chunk = ids[k:k + QUERY]
            try:
                rows = self._db.execute(f"SELECT id, a, b, n FROM ids WHERE id IN ({','.join('?' * len(chunk))})",
                                        chunk).fetchall()
            except UnicodeEncodeError:  # an id with a lone surrogate (in no index): asked one by one
                rows = []
                for image_id in chunk:
                    try:
                        row = self._db.execute("SELECT a, b, n FROM ids WHERE id = ?", (image_id,)).fetchone()
                    except UnicodeEncodeError:
                        continue
                    if row is not None:
                        rows.append((image_id, *row))
            found.update((row[0], row[1:]) for row in rows)
        return found

    def _checked(self, image_id: str, row: tuple[int, int, int] | None) -> tuple[int, int] | None:
        """Where ``image_id`` is, from its index row (None: not in the file); BadImage if the file repeats it."""
        if row is not None and row[2] > 1:
            raise BadImage(f"{self.path}: the image id {image_id!r} appears {row[2]} times; one image per id: "
                           "keep one copy")
        return None if row is None else row[:2]

    def get(self, image_id: str) -> bytes | None:
        """The image's bytes, or None when the file has no such id."""
        with self._lock:
            where = self._where(image_id)
            return None if where is None else self._values.fetch(image_id, *where)

    def get_many(self, ids: Iterable[str], stored: bool = False) -> list[bytes | str | None]:
        """``get`` for each id, in the order given; the file is read in its own order (each row group once).

        ``stored``: an image whose stored value is clean base64 text (what a data URL carries) comes
        as that text, neither decoded nor copied again; any other value as its decoded bytes.
        """
        ids = list(ids)
        with self._lock:
            found = self._places(ids)
            places = [(self._checked(i, found.get(i)), n, i) for n, i in enumerate(ids)]
            out: list[bytes | str | None] = [None] * len(places)
            for where, n, image_id in sorted((p for p in places if p[0] is not None), key=lambda p: p[0]):
                out[n] = self._values.fetch(image_id, *where, stored)
            return out

    def with_prefix(self, prefix: str, limit: int = 100_000) -> list[str]:
        """The ids that start with ``prefix`` (a video's frames), in id order; at most ``limit``."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT id FROM ids WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                                        (prefix, prefix + "\U0010ffff", limit)).fetchall()
            except UnicodeEncodeError:
                return []
        return [row[0] for row in rows if row[0].startswith(prefix)]

    def __contains__(self, image_id: object) -> bool:
        with self._lock:
            if not isinstance(image_id, str):
                return False
            try:
                return self._db.execute("SELECT 1 FROM ids WHERE id = ?", (image_id,)).fetchone() is not None
            except UnicodeEncodeError:
                return False

    def __len__(self) -> int:
        return self._count

    def missing(self, ids: Iterable[str]) -> list[str]:
        """The ids the file lacks, in the order given, each once; ids are checked in batches, streamed."""
        out: list[str] = []
        reported: set[str] = set()
        it = iter(ids)
        while True:
            chunk = [str(i) for _, i in zip(range(QUERY), it)]
            if not chunk:
                return out
            asked = [i for i in chunk if i.isascii() or _is_text(i)]
            with self._lock:
                marks = ",".join("?" * len(asked))
                found = {row[0] for row in self._db.execute(f"SELECT id FROM ids WHERE id IN ({marks})", asked)}
            for image_id in chunk:
                if image_id not in found and image_id not in reported:
                    reported.add(image_id)
                    out.append(image_id)

    def close(self) -> None:
        """Close the index and the image file."""
        with self._lock:
            self._values.close()
            self._db.close()

    def __enter__(self) -> "ImageIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_text(image_id: str) -> bool:
    """Whether an id can be stored as SQLite text (no lone surrogates); an id that cannot is missing."""
    try:
        image_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
