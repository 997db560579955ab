"""release/jsonstream: huge JSON objects read a member at a time, whatever the chunk boundaries, and
written a member at a time; a broken file is one error naming file, line and column."""

from __future__ import annotations

import json

import pytest

from syphus.errors import UserError
from syphus.release import jsonstream
from syphus.release.jsonstream import ObjectWriter, iter_members, read_first

DATA = {"DC_INS_00001": {"instruction": "Où est le chat ?", "answer": "Sur le \"tapis\".\n", "n": 12345678901},
        "DC_INS_00002": {"instruction": "What?", "answer": "A.", "score": -1.5e-3, "tags": [], "x": None},
        "DC_INS_00003": [True, False, {"deep": {"er": "🙂"}}]}


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_members_are_read_whole_across_any_chunk_boundary(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(jsonstream, "_CHUNK", chunk)  # a number, an escape or a character split between reads
    path = tmp_path / "DC_instructions.json"
    path.write_text(json.dumps({"meta": {"version": "0.0.1"}, "data": DATA}, ensure_ascii=False, indent=1),
                    encoding="utf-8")
    assert dict(iter_members(path, within="data")) == DATA
    assert [k for k, _ in iter_members(path)] == ["meta", "data"]
    assert read_first(path, "meta") == {"version": "0.0.1"}


def test_read_first_never_decodes_what_follows(tmp_path):
    path = tmp_path / "DC.json"
    path.write_text('{"meta": {"n": 1}, "data": {"a": [1, 2,, oops', encoding="utf-8")
    assert read_first(path, "meta") == {"n": 1}
    assert read_first(path, "data") is None  # only the first member is looked at


def test_a_broken_file_is_one_error_naming_its_line_and_column(tmp_path):
    path = tmp_path / "DC_instructions.json"
    path.write_text('{"data": {\n  "a": 1,\n  "b" 2\n}}', encoding="utf-8")
    with pytest.raises(UserError, match=rf"{path}:3:7: not valid JSON \(expected ':', found '2'\)"):
        list(iter_members(path, within="data"))
    other = tmp_path / "DC_train.json"
    other.write_text('{"DC_INS_00001": []}', encoding="utf-8")
    with pytest.raises(UserError, match="no top-level 'data' object; is this the right kind of file"):
        list(iter_members(other, within="data"))
    with pytest.raises(UserError, match="file not found"):
        list(iter_members(tmp_path / "gone.json"))


def test_writer_round_trips_with_and_without_meta(tmp_path):
    wrapped, bare = tmp_path / "DC_instructions.json", tmp_path / "DC_train.json"
    w = ObjectWriter(wrapped, {"version": "0.0.1", "author": "syphus"})
    for k, v in DATA.items():
        w.add(k, v)
    w.close()
    assert json.loads(wrapped.read_text(encoding="utf-8")) == {"meta": {"version": "0.0.1", "author": "syphus"},
                                                               "data": DATA}
    b = ObjectWriter(bare, None)
    b.close()
    assert json.loads(bare.read_text()) == {} and sorted(p.name for p in tmp_path.iterdir()) == [
        "DC_instructions.json", "DC_train.json"]  # no tmp file left
