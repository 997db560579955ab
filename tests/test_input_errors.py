"""Errors that name the real cause: a missing annotation file, a bad line of a JSON-lines file read by the
plugin's own loop or by ``iter_jsonl`` (issue 26, item 6)."""

from __future__ import annotations

import io

import pytest

from syphus.cli.main import main

PLUGIN = '''
import json
from syphus.dataset import AbstractDataset, iter_jsonl


class Lines(AbstractDataset):
    def __init__(self, name="Lines", prompt_path="prompts/example.json", query_inputs_path="rows.jsonl"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        READER
'''
OWN_LOOP = '''with open(path) as f:
            for line in f:
                row = json.loads(line)
                yield {"id": row["id"], "sentences": row["s"]}'''
HELPER = '''for n, row in iter_jsonl(path):
            yield {"id": row["id"], "sentences": row["s"]}'''


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main([*args, "--base_url", "http://127.0.0.1:9/v1", "--quiet"], env={}, stream=out)
    return code, out.getvalue()


def test_a_missing_annotation_file_is_said_to_be_missing_with_its_path(project):
    code, text = run("--name", "Example.example", "-in", "annotations/nope.jsonl")
    assert code == 2
    assert text == ("error: annotations/nope.jsonl: the annotation file does not exist (datasets/example.py "
                    "(Example) reads it); check the path: the plugin's query_inputs_path, or pass -in FILE\n")
    assert "plugin failed" not in text


@pytest.mark.parametrize("reader", [OWN_LOOP, HELPER], ids=["json.loads per line", "iter_jsonl"])
def test_a_bad_json_line_is_named_by_its_own_line(project, reader):
    (project / "datasets" / "lines.py").write_text(PLUGIN.replace("READER", reader), encoding="utf-8")
    (project / "rows.jsonl").write_text('{"id": "a", "s": "x"}\n{"id": "b", "s": "y"}\n{"id": "c", "s": "z"\n'
                                        '{"id": "d", "s": "w"}\n', encoding="utf-8")
    code, text = run("--name", "Lines")
    assert code == 2
    assert "rows.jsonl:3:21: " in text and "not valid JSON" in text  # the file's line 3, not the parser's "line 1"
    assert "line 1 column" not in text
