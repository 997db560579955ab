"""syphus.dataset.load_json and iter_jsonl: the annotation-file readers for plugins."""

from __future__ import annotations

import inspect
import re
import shutil

import pytest

from syphus import plugins
from syphus.dataset import NotUTF8, iter_jsonl, load_json
from syphus.errors import UserError


def message(call) -> str:
    with pytest.raises(UserError) as e:
        call()
    return str(e.value)


# --- load_json ----------------------------------------------------------------------------

def test_load_json_returns_the_document(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"v1": ["a caption", "another"]}', encoding="utf-8")
    assert load_json(path) == {"v1": ["a caption", "another"]}
    assert load_json(str(path), "captions file", expect=dict) == {"v1": ["a caption", "another"]}
    path.write_text("[1, 2]")
    assert load_json(path, expect=list) == [1, 2]


def test_load_json_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    assert message(lambda: load_json(path)) == (
        f"{path}: cannot read the annotation file (No such file or directory); check query_inputs_path or pass -in")
    assert message(lambda: load_json(path, "captions file")).startswith(f"{path}: cannot read the captions file (")


def test_load_json_unreadable_file(tmp_path):
    assert "cannot read the annotation file (Is a directory)" in message(lambda: load_json(tmp_path))
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"caption": "caf\u00e9"}'.encode("latin-1"))
    assert message(lambda: load_json(latin)).startswith(f"{latin}:1: cannot read the annotation file (not UTF-8 text")


def test_load_json_bad_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "v1": ["a"],\n  "v2": ["b",]\n}\n')
    assert message(lambda: load_json(path, "captions file")) == (
        f"{path}:3:14: the captions file is not valid JSON (Expecting value)")


@pytest.mark.parametrize("text, expect, expected", [
    ("[1, 2]", dict, "expected a JSON object in the captions file, found list"),
    ('{"a": 1}', list, "expected a JSON list in the captions file, found dict"),
    ('"just text"', dict, "expected a JSON object in the captions file, found str"),
    ("null", list, "expected a JSON list in the captions file, found NoneType"),
])
def test_load_json_wrong_top_level_type(tmp_path, text, expect, expected):
    path = tmp_path / "doc.json"
    path.write_text(text)
    assert message(lambda: load_json(path, "captions file", expect=expect)) == f"{path}: {expected}"


# --- iter_jsonl ---------------------------------------------------------------------------

def test_iter_jsonl_numbers_lines_and_skips_blank_ones(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n\n   \n["b"]\r\n7\n\n', encoding="utf-8")
    assert list(iter_jsonl(path)) == [(1, {"id": "a"}), (4, ["b"]), (5, 7)]
    path.write_text("")
    assert list(iter_jsonl(path)) == []


def test_iter_jsonl_streams_up_to_a_bad_line_and_names_it(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c",}\n{"id": "d"}\n')
    rows = iter_jsonl(path, "captions file")
    assert inspect.isgenerator(rows)
    assert next(rows) == (1, {"id": "a"}) and next(rows) == (2, {"id": "b"})  # yielded before line 3 is read
    with pytest.raises(UserError) as e:
        next(rows)
    assert str(e.value) == f"{path}:3:12: the captions file is not valid JSON (Expecting property name enclosed in double quotes)"


def test_iter_jsonl_counts_blank_lines_in_the_line_number(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": \n')
    assert re.match(re.escape(f"{path}:3:8: the annotation file is not valid JSON"), message(lambda: list(iter_jsonl(path))))


def test_iter_jsonl_names_the_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "caf\xe9"}\n{"id": "d"}\n')
    rows = iter_jsonl(path, "captions file")
    assert [next(rows), next(rows)] == [(1, {"id": "a"}), (2, {"id": "b"})]
    with pytest.raises(NotUTF8) as e:
        next(rows)
    assert str(e.value).startswith(f"{path}:3: cannot read the captions file (not UTF-8 text: invalid continuation "
                                   "byte at byte 12 of the line); save it as UTF-8")
    assert (e.value.path, e.value.line) == (path, 3) and isinstance(e.value, UserError)


def test_load_json_names_the_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "doc.json"
    path.write_bytes(b'{\n  "v1": ["fine"],\n  "v2": ["caf\xe9"]\n}\n')
    assert message(lambda: load_json(path)).startswith(f"{path}:3: cannot read the annotation file (not UTF-8 text")


def test_iter_jsonl_missing_file_is_reported_when_iterated(tmp_path):
    path = tmp_path / "nope.jsonl"
    rows = iter_jsonl(path, "TVC file")  # nothing is opened yet
    assert message(lambda: next(rows)) == (
        f"{path}: cannot read the TVC file (No such file or directory); check query_inputs_path or pass -in")


# --- the built-in plugins use them --------------------------------------------------------

@pytest.mark.parametrize("name, what, at", [
    ("DC", "ActivityNet Captions file", "2:3"), ("SD", "Spot-the-Diff file", "2:3"), ("VST", "VIST file", "2:3"),
    ("TVC", "TVC file", "1:2"),  # JSON lines: line 1, "{", is already bad
    ("E4D", "Ego4D narrations file", "2:3"), ("SN", "ScanNet descriptions file", "2:3"),
])
def test_scene_plugins_report_missing_and_bad_files(scenes, name, what, at):
    def read(path):
        cls, module = plugins.resolve(name, "datasets")
        return list(plugins.instantiate(cls, module, query_inputs_path=str(path)).query_inputs)

    missing = scenes / "missing.json"
    assert message(lambda: read(missing)).startswith(f"{missing}: cannot read the {what} (No such file or directory)")
    bad = scenes / "bad.json"
    bad.write_text("{\n  oops\n}\n")
    assert message(lambda: read(bad)) == f"{bad}:{at}: the {what} is not valid JSON (Expecting property name enclosed in double quotes)"


def test_coco_plugins_report_bad_json(scenes):
    folder = scenes / "coco"
    shutil.copytree(scenes / "datasets/samples/cgd", folder)
    (folder / "instances_train2017.json").write_text('{"images": [}')
    cls, module = plugins.resolve("CGD", "datasets")
    with pytest.raises(UserError) as e:
        list(plugins.instantiate(cls, module, query_inputs_path=str(folder)).query_inputs)
    assert str(e.value).startswith(f"{folder / 'instances_train2017.json'}:1:13: the COCO annotation file is not valid JSON")
