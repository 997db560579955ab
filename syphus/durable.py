"""Durable files: bytes written whole, synced to disk, and files swapped in atomically.

Every file Syphus must not lose or show half-written goes through these few steps, so a
process killed at any instant leaves the old file or the new one, never a mix:

- ``write_all(fd, data)``: every byte, going on after short writes (``os.write`` may write less);
- ``sync_path(path)``: fsync a file (or directory) by name, raising if it cannot;
- ``sync_dir(folder)``: make the names just created in ``folder`` outlive a power loss;
- ``atomic_file(path)`` / ``write_atomic(path, text)``: write ``<path>.tmp``, (fsync,) replace ``path``.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "meta.json"
>>> write_atomic(path, '{"n": 1}\\n')
>>> path.read_text()
'{"n": 1}\\n'

Directory sync, one rule for every use: a real error (EIO, a folder that is gone) is raised,
since the step after it relies on the names being durable (removing a commit marker after a swap
in ``engine/store`` and ``release/export``; recording in ``batch/state.jsonl`` the name of a request
file that resume will upload); a filesystem that cannot sync directories at all (EINVAL, ENOTSUP)
offers nothing stronger, so there it is a no-op rather than a refusal to run. (Before this module,
batch ignored every error and store/export raised every one; on Linux's local filesystems, where
directory fsync works, both behave as before.)

The functions call ``os.write`` / ``os.fsync`` / ``os.replace`` when they run (not when imported),
so the crash tests' kill points (``tests/crashpoint.py``) see every step.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TMP = ".tmp"
UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}  # fsync of a directory, where it cannot be


def tmp_path(path: Path) -> Path:
    """Where ``path`` is written before it replaces the old one: ``<path>.tmp`` beside it."""
    return path.with_name(path.name + TMP)


def write_all(fd: int, data: bytes | memoryview, write: Callable[[int, memoryview], int] | None = None) -> None:
    """Write every byte of ``data`` to ``fd``, going on after short writes.

    ``write`` replaces ``os.write`` (tests make the disk fail with it). A write of nothing is an
    OSError (a full or failing disk), never a loop.
    """
    view = memoryview(data)
    while view:
        n = (write or os.write)(fd, view)
        if n <= 0:
            raise OSError(f"os.write wrote {n} bytes ({len(view)} left); check the disk the folder is on")
        view = view[n:]


def sync_path(path: str | Path) -> None:
    """fsync the file or directory ``path`` by name; an OSError if it cannot be opened or synced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(folder: str | Path) -> None:
    """Make the names of files just created, replaced or removed in ``folder`` durable.

    A no-op where the filesystem cannot sync a directory; any other failure is an OSError.
    """
    try:
        sync_path(folder)
    except OSError as e:
        if e.errno not in UNSUPPORTED:
            raise


def sync_file(f: IO[Any]) -> None:
    """Flush an open file object and fsync it: what was written to it is on disk."""
    f.flush()
    os.fsync(f.fileno())


def swap_in(tmp: Path, path: Path, *, sync: bool = False) -> None:
    """Replace ``path`` with the complete file ``tmp`` (written by someone else, e.g. a Parquet or
    SQLite writer); with ``sync`` its bytes are fsynced first."""
    if sync:
        sync_path(tmp)
    os.replace(tmp, path)


class AtomicFile:
    """A file on ``tmp`` (``<path>.tmp`` by default) that replaces ``path`` on ``commit``, or is
    removed on ``abort`` (``path`` then stays as it was). For writers that live longer than a block
    (``release/jsonstream.ObjectWriter``); within one block use ``atomic_file``.

    With ``sync`` the bytes are fsynced before the replace (a power loss then leaves the old file
    or the new one); without it only a process crash is covered, for files that are synced later
    (release files, under export's commit marker) or are cheap to make again.
    """

    def __init__(self, path: str | Path, mode: str = "w", *, sync: bool = True, tmp: Path | None = None):
        self.path = Path(path)
        self.tmp = tmp or tmp_path(self.path)
        self.sync = sync
        self.file: IO[Any] = self.tmp.open(mode, **({} if "b" in mode else {"encoding": "utf-8"}))

    def commit(self) -> None:
        """Flush (and fsync), close, and put the file in place (or, failing that, ``abort``)."""
        try:
            if self.sync:
                sync_file(self.file)
            self.file.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Close and remove the unfinished file."""
        self.file.close()
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path, mode: str = "w", *, sync: bool = True,
                tmp: Path | None = None) -> Iterator[IO[Any]]:
    """A file object that replaces ``path`` when the block ends (see ``AtomicFile``); a block that
    raises removes the tmp file and leaves ``path`` as it was.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ids.txt"
    >>> with atomic_file(path) as f:
    ...     _ = f.write("a\\n")
    >>> path.read_text()
    'a\\n'
    """
    out = AtomicFile(path, mode, sync=sync, tmp=tmp)
    try:
        yield out.file
    except BaseException:
        out.abort()
        raise
    out.commit()


def write_atomic(path: str | Path, text: str | bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new one, never half."""
    with atomic_file(path, "wb" if isinstance(text, bytes) else "w", sync=sync) as f:
        f.write(text)


def commit_swaps(folder: Path, marker: str, finals: list[Path], suffix: str, note: str) -> None:
    """Put the complete files ``<final><suffix>`` in place of ``finals``, all or none, across crashes.

    The marker ``folder/marker`` (holding ``note``) is written first: from then on the swap is
    decided, and ``recover_swaps`` finishes it after a crash; before it, ``recover_swaps`` drops
    the new files and the old ones stay. The caller has synced the new files' bytes.
    """
    write_atomic(folder / marker, note)
    sync_dir(folder)
    for final in finals:
        os.replace(final.with_name(final.name + suffix), final)
    sync_dir(folder)
    (folder / marker).unlink()


def recover_swaps(folder: Path, marker: str, leftovers: list[Path], suffix: str,
                  debris: list[Path] | tuple[()] = ()) -> str | None:
    """Finish (marker present) or undo (absent) a ``commit_swaps`` a crash interrupted.

    ``leftovers`` are the ``<name><suffix>`` files found in ``folder``; ``debris`` what else an
    undo removes (files killed while being written). "finished", "undone", or None (nothing to do).
    """
    tmp_path(folder / marker).unlink(missing_ok=True)  # killed while the marker itself was being written
    if (folder / marker).exists():
        for tmp in leftovers:
            os.replace(tmp, folder / tmp.name[:-len(suffix)])
        sync_dir(folder)
        (folder / marker).unlink()
        return "finished"
    for tmp in [*leftovers, *debris]:
        tmp.unlink()
    return "undone" if leftovers else None
