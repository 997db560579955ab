"""The report's figures against counts made by hand on a small fixed run, and its page in headless Chromium
showing those numbers and no empty axes (issue 26, item 7).

The hand counts, for the 10 pairs below:
- answer lengths in words, sorted: 2 4 4 5 5 5 6 6 7 11 -> median (5 + 6) / 2 = 5.5 (the lower middle is 5);
- leading words: what 2 ("What's", "what's"), which 3 (at the start, or after the lead-in "In the kitchen,"),
  who 1 ("Who's"), why 1 ("But why"), imperative 2 (describe, list: "Describe the room, which has a bed." is an
  imperative, its "which" a relative pronoun), other 1 ("Two dogs ...": a statement, "two" no verb);
- duplicates: "what's on the table?" repeats "What's on the table?" exactly; "Which car in the picture is red
  now?" is a near copy of "Which car in the picture is red?": 1 exact, 1 near (not exact), --dedup drops 2;
- signals: no answer repeats its instruction or refuses, no forbidden words: 0 each;
- cost: the bundled model, priced at zero.
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest

from syphus.cli import main
from syphus.release.report import build_report
from tests.test_view import _chromium, _run_chromium

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    {"id": "q1", "pairs": [
        {"instruction": "What's on the table?", "answer": "A red cup and two plates."},
        {"instruction": "Who's standing by the door?", "answer": "A man in a long coat."},
        {"instruction": "Describe the room, which has a bed.", "answer": "It is a small bedroom with a bed and a lamp."},
    ]},
    {"id": "q2", "pairs": [
        {"instruction": "But why is the dog barking?", "answer": "It sees a cat."},
        {"instruction": "Two dogs are playing in the park.", "answer": "Yes, they chase a ball."},
        {"instruction": "Which car in the picture is red?", "answer": "The one on the left."},
    ]},
    {"id": "q3", "pairs": [
        {"instruction": "List the objects on the desk.", "answer": "A pen, a book and a phone."},
        {"instruction": "what's on the table?", "answer": "A cup."},
    ]},
    {"id": "q4", "pairs": [
        {"instruction": "In the kitchen, which pot is boiling?", "answer": "The big one on the stove."},
        {"instruction": "Which car in the picture is red now?", "answer": "The left one is red."},
    ]},
]
HAND = {
    "answer_median": 5.5,
    "kinds": {"wh": 7, "imperative": 2, "other": 1},
    "leading_words": {"which": 3, "what": 2, "who": 1, "why": 1},
    "verbs": {"describe": 1, "list": 1},
    "exact": 1, "near": 1, "dropped": 2,
}


def write_run(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "pairs.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({**r, "raw": "{}", "model": "local", "problems": [],
                                "usage": {"prompt_tokens": 100, "completion_tokens": 40}}) + "\n")
    (folder / "meta.json").write_text(json.dumps({
        "dataset": {"name": "Fixed", "scene": None, "prompt_path": None},
        "endpoint": {"kind": "local", "model": "local"},
        "config": {"endpoint": {"kind": "auto", "model": None},
                   "cost": {"pricing": str(ROOT / "configs" / "pricing.yaml")}, "mode": "online"}}))
    return folder


@pytest.fixture
def fixed(tmp_path) -> Path:
    return write_run(tmp_path / "output" / "Fixed" / "v1", PAIRS)


def test_every_figure_equals_the_hand_count(fixed, tmp_path):
    s = build_report([fixed], out=tmp_path / "r").data["sources"][0]
    answers = s["lengths"]["answer_words"]
    assert answers["n"] == 10 and answers["median"] == HAND["answer_median"]
    q = s["question_types"]
    assert dict(q["kinds"]["top"]) == HAND["kinds"]
    assert dict(q["leading_words"]["top"]) == HAND["leading_words"]
    assert dict(q["imperative_verbs"]["top"]) == HAND["verbs"]
    d = s["duplicates"]
    assert (d["exact_duplicates"], d["near_duplicates"], d["dropped_by_dedup"]) == (HAND["exact"], HAND["near"],
                                                                                     HAND["dropped"])
    assert all(s["signals"][k]["count"] == 0 for k in ("repeats", "refusals", "forbidden"))
    assert s["cost"]["cost_usd"] == 0.0


def test_the_summary_counts_each_duplicate_once(fixed, tmp_path):
    out = io.StringIO()
    assert main(["report", str(fixed), "--out", str(tmp_path / "rep")], env={}, stream=out) == 0
    assert "10 pairs" in out.getvalue()
    assert "1 exact repeat and 1 near duplicate besides (--dedup drops 2)" in out.getvalue()


def figures(dom: str) -> dict[str, str]:
    return dict(re.findall(r'<figure class="plot" id="plot-([\w-]+)" data-plot="[\w-]+">(.*?)</figure>', dom, re.S))


def test_the_page_in_chromium_shows_the_hand_counts_and_no_empty_axes(tmp_path, fixed):
    # and a second run with no duplicates at all, so that its cluster chart has nothing to draw
    single = write_run(tmp_path / "output" / "Single" / "v1", [PAIRS[1]])
    out = io.StringIO()
    assert main(["report", str(fixed), str(single), "--out", str(tmp_path / "rep")], env={}, stream=out) == 0
    alone = io.StringIO()
    assert main(["report", str(single), "--out", str(tmp_path / "alone")], env={}, stream=alone) == 0
    _chromium()
    shot = tmp_path / "report.png"
    proc = _run_chromium(tmp_path, "--virtual-time-budget=3000", "--window-size=1200,4000",
                         f"--screenshot={shot}", (tmp_path / "rep" / "index.html").as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    for folder in ("rep", "alone"):
        proc = _run_chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom",
                             (tmp_path / folder / "index.html").as_uri())
        dom = proc.stdout
        assert "</html>" in dom, proc.stderr[-2000:]
        plots = figures(dom)
        assert plots, "no plots on the page"
        for name, body in plots.items():  # matplotlib's bare axes run from -0.04 to 0.04
            assert "0.04" not in html.unescape(body), f"plot {name} draws empty axes"
        text = html.unescape(dom)
        if folder == "rep":
            rows = re.findall(r"<tr>(.*?)</tr>", dom, re.S)
            answer_row = next(r for r in rows if "Fixed" in r and "answer, words" in html.unescape(r))
            assert ">5.50<" in answer_row  # the median, 5.5, not the lower middle 5
            which = next(r for r in rows if re.search(r"<td[^>]*>which</td>", r))
            assert ">30.0%<" in which  # 3 of the 10 instructions
            assert not any(re.search(r"<td[^>]*>(but|two)</td>", r) for r in rows)
            assert "no data" in plots["signals"] and "no data" in plots["cost"]
        else:
            assert "no data: no near-duplicate clusters" in text
