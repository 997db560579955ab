"""syphus.durable: whole writes, syncs that fail loudly (or not at all where a directory cannot be
synced), and files swapped in whole or not at all."""

from __future__ import annotations

import errno
import os

import pytest

from syphus.durable import (AtomicFile, atomic_file, commit_swaps, recover_swaps, swap_in, sync_dir, sync_path,
                            write_all, write_atomic)


def test_write_all_goes_on_after_short_writes(tmp_path):
    calls = []

    def one_byte(fd, view):
        calls.append(len(view))
        return os.write(fd, view[:1])

    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        write_all(fd, b"abcd", one_byte)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"abcd"
    assert calls == [4, 3, 2, 1]


def test_write_all_refuses_to_loop_on_a_write_of_nothing(tmp_path):
    with pytest.raises(OSError, match="wrote 0 bytes"):
        write_all(0, b"abc", lambda fd, view: 0)


def _fsync_failing(monkeypatch, code):
    real = os.fsync

    def fsync(fd):
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_sync_dir_is_a_no_op_where_directories_cannot_be_synced(tmp_path, monkeypatch):
    _fsync_failing(monkeypatch, errno.EINVAL)
    assert sync_dir(tmp_path) is None
    with pytest.raises(OSError):  # sync_path itself never hides it
        sync_path(tmp_path)


def test_sync_dir_raises_a_real_error(tmp_path, monkeypatch):
    _fsync_failing(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as e:
        sync_dir(tmp_path)
    assert e.value.errno == errno.EIO
    with pytest.raises(FileNotFoundError):
        sync_dir(tmp_path / "gone")


def test_write_atomic_replaces_whole_text_or_bytes(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text("old")
    write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    write_atomic(path, b"\x00\x01", sync=False)
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_a_block_that_raises_leaves_the_old_file_and_no_tmp(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as f:
            f.write("half")
            raise RuntimeError("killed half way")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.txt"]


def test_atomic_file_syncs_before_the_replace(tmp_path, monkeypatch):
    steps = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (steps.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (steps.append("replace"), real_replace(a, b))[1])
    with atomic_file(tmp_path / "a") as f:
        f.write("x")
    assert steps == ["fsync", "replace"]
    steps.clear()
    with atomic_file(tmp_path / "b", sync=False) as f:
        f.write("x")
    assert steps == ["replace"]


def test_atomic_file_commit_and_abort(tmp_path):
    kept = AtomicFile(tmp_path / "kept.json", sync=False)
    kept.file.write("{}")
    assert not (tmp_path / "kept.json").exists()  # nothing in place before commit
    kept.commit()
    dropped = AtomicFile(tmp_path / "dropped.json", "wb", tmp=tmp_path / "dropped.part")
    dropped.file.write(b"half")
    dropped.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]
    assert (tmp_path / "kept.json").read_text() == "{}"


def test_swap_in_puts_a_finished_file_in_place(tmp_path):
    tmp, path = tmp_path / "t.parquet.tmp", tmp_path / "t.parquet"
    tmp.write_bytes(b"PAR1")
    swap_in(tmp, path, sync=True)
    assert path.read_bytes() == b"PAR1" and not tmp.exists()


def _two_swaps(folder):
    for name in ("a.json", "b.json"):
        (folder / name).write_text("old")
        (folder / (name + ".swap")).write_text("new")
    return [folder / "a.json", folder / "b.json"]


def test_commit_swaps_puts_every_file_in_place_and_drops_the_marker(tmp_path):
    finals = _two_swaps(tmp_path)
    commit_swaps(tmp_path, "x.commit", finals, ".swap", "a and b\n")
    assert [p.read_text() for p in finals] == ["new", "new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_recover_swaps_finishes_after_the_marker_and_undoes_before_it(tmp_path):
    finals = _two_swaps(tmp_path)
    os.replace(tmp_path / "a.json.swap", tmp_path / "a.json")  # killed after the marker and the first swap
    (tmp_path / "x.commit").write_text("a and b\n")
    left = sorted(tmp_path.glob("*.swap"))
    assert recover_swaps(tmp_path, "x.commit", left, ".swap") == "finished"
    assert [p.read_text() for p in finals] == ["new", "new"] and not (tmp_path / "x.commit").exists()

    finals = _two_swaps(tmp_path)
    (tmp_path / "x.commit.tmp").write_text("a and")  # killed while writing the marker
    (tmp_path / "c.json.swap.tmp").write_text("half")
    left = sorted(tmp_path.glob("*.swap"))
    assert recover_swaps(tmp_path, "x.commit", left, ".swap", debris=[tmp_path / "c.json.swap.tmp"]) == "undone"
    assert [p.read_text() for p in finals] == ["old", "old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
    assert recover_swaps(tmp_path, "x.commit", [], ".swap") is None
