"""The viewer shows what each pair was made from: the annotation of its query beside it (from the run folder
a release was exported into, or the release entry's own field), and the cold start's candidates side by side,
each query once (issue 26, item 8). Checked in headless Chromium, as tests/test_view.py does."""

from __future__ import annotations

import html
import io
import json
import re

from syphus.cli import main
from syphus.release.view import build_view
from tests.helpers import lines
from tests.test_view import _chromium, _run_chromium


def example_sentences(project) -> dict[str, str]:
    """Each query's sentences as the Example plugin makes them, computed here from the annotation file."""
    out = {}
    for line in (project / "datasets" / "samples" / "example_scenes.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            scene = json.loads(line)
            boxes = "\n".join(f"{name}: {box}" for name, box in scene.get("objects", []))
            out[scene["id"]] = f"{scene['caption']}\n{boxes}".strip()
    return out


def dom_of(tmp_path, index) -> str:
    proc = _run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", index.as_uri())
    assert "</html>" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def test_each_pair_shows_its_querys_annotation(project, server, tmp_path):
    assert main(["--name", "Example.example", "--base_url", server.base_url, "--quiet"], env={},
                stream=io.StringIO()) == 0
    run = project / "output" / "Example" / "v1"
    assert main(["export", str(run), "--prefix", "EX"], env={}, stream=io.StringIO()) == 0
    out = io.StringIO()
    assert main(["view", str(run / "export" / "EX_instructions.json")], env={}, stream=out) == 0
    assert "annotations: 24 of 24 pairs show the annotation their query was made from" in out.getvalue()
    _chromium()
    dom = dom_of(tmp_path, run / "export" / "EX_instructions_view" / "index.html")
    cards = re.findall(r'<article class="pair" data-id="([^"]+)".*?</article>', dom, re.S)
    assert len(cards) == 24
    sentences = example_sentences(project)
    # which query each instruction came from, by the run's own records
    by_text = {(p["instruction"], p["answer"]): r["id"] for r in lines(run / "pairs.jsonl") for p in r["pairs"]}
    release = json.loads((run / "export" / "EX_instructions.json").read_text(encoding="utf-8"))["data"]
    for card in re.findall(r'(<article class="pair" data-id="[^"]+".*?</article>)', dom, re.S):
        ins_id = re.search(r'data-id="([^"]+)"', card).group(1)
        entry = release[ins_id]
        qid = by_text[(entry["instruction"], entry["answer"])]
        shown = html.unescape(re.search(r'<div class="source">.*?<pre[^>]*>(.*?)</pre>', card, re.S).group(1))
        assert shown == sentences[qid], ins_id
        assert f'<span class="query">{qid}</span>' in card
        assert '<span class="images">no images</span>' in card  # a text-only dataset: not "0 images"


def test_a_release_file_alone_shows_its_own_annotation_field(tmp_path):
    data = {"meta": {}, "data": {"EX_INS_00001": {"instruction": "Q?", "answer": "A.", "image_ids": ["a", "b"],
                                                  "annotation": "a dog on a sofa"},
                                 "EX_INS_00002": {"instruction": "R?", "answer": "B.", "image_ids": ["c"]}}}
    path = tmp_path / "EX_instructions.json"
    path.write_text(json.dumps(data))
    r = build_view([path])
    assert r.annotated == 1 and r.images_referenced == 3
    _chromium()
    dom = html.unescape(dom_of(tmp_path, r.index))
    assert "a dog on a sofa" in dom and ">2 images<" in dom and ">1 image<" in dom


def test_the_cold_start_viewer_shows_each_query_once_with_candidates_side_by_side(project, server, tmp_path):
    out = io.StringIO()
    assert main(["coldstart", "--name", "Example", "--base_url", server.base_url, "--quiet", "--view"], env={},
                stream=out) == 0, out.getvalue()
    base = project / "output" / "Example"
    index = base / "coldstart-seed0-n8-view" / "index.html"
    assert index.exists(), out.getvalue()
    candidates = sorted(p.name[len("coldstart-"):-len("-seed0-n8")] for p in base.glob("coldstart-*-seed0-n8")
                        if p.is_dir())
    pairs = {c: {r["id"]: len(r["pairs"]) for r in lines(base / f"coldstart-{c}-seed0-n8" / "pairs.jsonl")}
             for c in candidates}
    _chromium()
    dom = dom_of(tmp_path, index)
    groups = re.findall(r'(<article class="pair group" data-query="([^"]+)">.*?</article>)', dom, re.S)
    queries = [q for _, q in groups]
    assert sorted(queries) == sorted(example_sentences(project)) and len(set(queries)) == len(queries) == 8
    for block, qid in groups:
        assert html.unescape(re.search(r"<pre[^>]*>(.*?)</pre>", block, re.S).group(1)) == \
            example_sentences(project)[qid]
        columns = re.findall(r'<section class="column" data-candidate="([^"]+)">(.*?)</section>', block, re.S)
        assert sorted(c for c, _ in columns) == candidates  # every candidate beside the others
        for candidate, column in columns:
            assert column.count('class="text"') == pairs[candidate].get(qid, 0), (qid, candidate)
