"""syphus report and export --dedup: exact counts on a hand-made run, planted near duplicates, the page in
headless Chromium, and a deduplicated release that still validates.

The browser test needs Debian's ``chromium`` (``apt-get install -y chromium``); without it it is skipped,
unless SYPHUS_REQUIRE_CHROMIUM=1 makes a missing browser a failure (as in tests/test_view.py).
"""

from __future__ import annotations

import html
import io
import json
import random
import re
import sys
from pathlib import Path

import pytest

from syphus.cli import main
from syphus.release.dedup import NearDuplicates, band_shape
from syphus.release.report import build_report
from syphus.release.reportpage import PLOTS, cluster_tables, examples, plot_signals, plot_why
from syphus.release.validate import validate_files
from syphus.signals import question_type, repeats_instruction
from tests.test_view import _chromium, _run_chromium

ROOT = Path(__file__).resolve().parent.parent
PROMPT = {"system_message": "Write three questions and answers about the scene. Never mention captions, boxes or "
                            "coordinates.", "in_context": []}
PAIRS = [
    {"id": "v1", "pairs": [
        {"instruction": "What is the man holding in his left hand?", "answer": "A red cup."},
        {"instruction": "Describe the kitchen.", "answer": "The caption says it is small."},
        {"instruction": "Why is the dog barking?", "answer": "I'm sorry, I cannot tell."}],
     "raw": "Question: ...", "usage": {"prompt_tokens": 500, "completion_tokens": 100}, "problems": []},
    {"id": "v2", "pairs": [
        {"instruction": "What is the man holding in his left hand now?",
         "answer": "What is the man holding in his left hand now? A cup."},
        {"instruction": "In the video, where does the bus go?", "answer": "To the station, near two boxes."}],
     "raw": "Question: ...", "usage": {"prompt_tokens": 400, "completion_tokens": 80}, "truncated": True,
     "problems": ["answer without a question: 'Hm.'", "reply cut off at max_tokens; the last pair was dropped"]},
    {"id": "v5", "pairs": [
        {"instruction": "what is the MAN holding in his  left hand?", "answer": "A cup."},
        {"instruction": "Count the chairs.", "answer": "Four."}],
     "raw": "Question: ...", "usage": {"prompt_tokens": 450, "completion_tokens": 60}, "problems": []},
]
INVALID = [{"id": "v3", "pairs": [], "raw": "I'm sorry, I cannot see the image.",
            "reason": "no 'Question:'/'Answer:' labels found",
            "usage": {"prompt_tokens": 300, "completion_tokens": 10}}]
ERRORS = [{"id": "v1", "kind": "timeout", "message": "superseded by the answer"},  # answered later: not an error
          {"id": "v4", "kind": "timeout", "message": "no reply", "attempts": 8,
           "estimated_usage": {"prompt_tokens": 300, "completion_tokens": 1024}},
          {"id": "v6", "kind": "content_filter", "message": "filtered"},
          {"id": "v6", "kind": "content_filter", "message": "filtered again"}]  # one query, counted once


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def run(tmp_path):
    """A run folder made by hand: 6 queries, 7 pairs, 1 invalid, 2 errors (one superseded line, one repeated)."""
    folder = tmp_path / "output" / "DC" / "v1"
    folder.mkdir(parents=True)
    (tmp_path / "prompt.json").write_text(json.dumps(PROMPT))
    write_jsonl(folder / "pairs.jsonl", PAIRS)
    write_jsonl(folder / "invalid.jsonl", INVALID)
    write_jsonl(folder / "errors.jsonl", ERRORS)
    (folder / "meta.json").write_text(json.dumps({
        "dataset": {"name": "DenseCaptions", "scene": "DC", "prompt_path": str(tmp_path / "prompt.json")},
        "config": {"endpoint": {"model": "gpt-4o-mini"}, "cost": {"pricing": str(ROOT / "configs" / "pricing.yaml")},
                   "mode": "online"}}))
    return folder


def test_exact_counts_on_a_hand_made_run(run, tmp_path):
    report = build_report([run], out=tmp_path / "r")
    s = report.data["sources"][0]
    assert s["label"] == "DC (v1)" and s["kind"] == "run" and s["prompt"] == str(tmp_path / "prompt.json")
    assert s["counts"] == {"queries": 6, "with_pairs": 3, "invalid": 1, "errors": 2, "pairs": 7, "truncated": 1,
                           "refused_replies": 1, "empty_instructions": 0, "empty_answers": 0}
    why = s["why"]
    assert why["invalid_reasons"]["top"] == [["no 'Question:'/'Answer:' labels found", 1]]
    assert why["problems"]["top"] == [["answer without a question: '…'", 1],
                                      ["reply cut off at max_tokens; the last pair was dropped", 1]]
    assert why["error_kinds"]["top"] == [["content_filter", 1], ["timeout", 1]]
    assert s["pairs_per_input"]["counts"] == [1, 0, 2, 1] and s["pairs_per_input"]["requested"] == 3
    words = s["lengths"]["instruction_words"]
    assert (words["n"], words["max"], words["median"]) == (7, 10, 8)
    assert words["counts"][3] == 2 and words["counts"][9] == 2 and words["counts"][10] == 1
    q = s["question_types"]
    assert q["kinds"]["top"] == [["wh", 5], ["imperative", 2]]
    assert q["leading_words"]["top"] == [["what", 3], ["where", 1], ["why", 1]]
    assert q["imperative_verbs"]["top"] == [["count", 1], ["describe", 1]]
    sig = s["signals"]
    assert (sig["repeats"]["count"], sig["refusals"]["count"], sig["forbidden"]["count"]) == (1, 1, 2)
    assert [e["id"] for e in sig["repeats"]["examples"]] == ["v2#1"]
    assert [e["id"] for e in sig["refusals"]["examples"]] == ["v1#3"]
    assert [(e["id"], e["words"]) for e in sig["forbidden"]["examples"]] == [("v1#2", ["captions"]),
                                                                             ("v2#2", ["boxes"])]
    assert sig["forbidden_words"] == ["captions", "boxes", "coordinates"]
    d = s["duplicates"]
    # "what is the MAN holding..." repeats v1#1 exactly (case and spacing aside); v2#1 is a near copy of it
    # one exact repeat and one near (not exact) duplicate: --dedup drops those 2, each counted once
    assert (d["exact_duplicates"], d["near_duplicates"], d["dropped_by_dedup"], d["in_clusters"]) == (1, 1, 2, 3)
    cost = s["cost"]
    assert (cost["prompt_tokens"], cost["completion_tokens"], cost["estimated_prompt_tokens"],
            cost["estimated_completion_tokens"]) == (1650, 250, 300, 1024)
    assert cost["cost_usd"] == pytest.approx((1950 * 0.15 + 1274 * 0.60) / 1e6)
    assert cost["prompt_tokens_per_pair"] == round(1950 / 7, 1)
    top = report.data["duplicates"]["largest_clusters"][0]
    assert top["size"] == 3 and [m["id"] for m in top["members"]] == ["v1#1", "v2#1", "v5#1"]
    assert [m["id"] for m in report.data["duplicates"]["largest_exact_groups"][0]["members"]] == ["v1#1", "v5#1"]


def _shifted(words: list[str], drop: int, extra: list[str]) -> str:
    return " ".join(words[drop:] + extra)


def planted(rng: random.Random) -> tuple[list[str], dict[float, set[tuple[int, int]]]]:
    """Unrelated texts, and planted pairs whose 2-word-shingle Jaccard is exactly 0.8, 0.7 or 0.5."""
    vocab = [f"w{i}" for i in range(20000)]
    texts: list[str] = []
    pairs: dict[float, set[tuple[int, int]]] = {0.8: set(), 0.7: set(), 0.5: set()}
    for k in range(60):
        base = rng.sample(vocab, 10)  # 9 shingles
        texts.append(" ".join(base))
        # 0.8: drop the first word, add one (8 shared of 10); 0.7: drop two, add one (7 of 10);
        # 0.5: drop three, add three (6 of 12)
        extra = rng.sample(vocab, 3)
        share = (0.8, 0.7, 0.5)[k % 3]
        texts.append({0.8: _shifted(base, 1, extra[:1]), 0.7: _shifted(base, 2, extra[:1]),
                      0.5: _shifted(base, 3, extra[:3])}[share])
        pairs[share].add((len(texts) - 2, len(texts) - 1))
        texts.append(" ".join(rng.sample(vocab, rng.randint(4, 14))))  # unrelated
    return texts, pairs


def clustered_pairs(texts: list[str], threshold: float) -> set[tuple[int, int]]:
    finder = NearDuplicates(threshold=threshold)
    for t in texts:
        finder.add(t)
    c = finder.clusters()
    return {(int(m[0]), int(m[1])) for m in c.largest(len(texts)) if len(m) == 2} | \
        {(-1, -1) for m in c.largest(len(texts)) if len(m) != 2}


def test_planted_near_duplicates_are_found_at_the_threshold_and_not_below_it():
    texts, pairs = planted(random.Random(3))
    assert clustered_pairs(texts, 0.8) == pairs[0.8]
    assert clustered_pairs(texts, 0.81) == set()
    assert clustered_pairs(texts, 0.7) == pairs[0.8] | pairs[0.7]
    assert clustered_pairs(texts, 0.71) == pairs[0.8]
    assert clustered_pairs(texts, 0.5) == pairs[0.8] | pairs[0.7] | pairs[0.5]
    assert band_shape(0.8, 64) == (16, 4)


def test_exact_repeats_and_the_first_is_kept():
    finder = NearDuplicates(threshold=0.9)
    for t in ["Where is the cat?", "where is  the CAT?", "Where is the cat", "", "", "Where is the dog?"]:
        finder.add(t)
    c = finder.clusters()
    assert c.exact_root.tolist() == [0, 0, 2, 3, 3, 5]  # punctuation counts for exact; blank texts repeat
    assert c.root.tolist() == [0, 0, 0, 3, 3, 5]  # the words are the same: near duplicates; blanks only exact
    assert c.dropped().tolist() == [False, True, True, False, True, False]
    assert c.summary()["empty"] == 2 and c.size_counts() == {2: 1, 3: 1}


def test_signals_read_the_text():
    assert tuple(question_type("Based on the scene, how many people are there?")) == ("wh", "how")
    assert tuple(question_type("1. Are the lights on?")) == ("aux", "are")
    assert tuple(question_type("There is a dog?")) == ("other", None)
    assert repeats_instruction("Is the door open?", "is the door open")
    assert not repeats_instruction("What colour is the car?", "Blue.")


def _release(folder: Path) -> tuple[Path, Path]:
    """An English release file, its train file, a zh translation with failures, and the viewer of both."""
    en = {f"DC_INS_{n:05d}": {"instruction": text, "answer": f"Answer {n}.", "image_ids": [],
                              "rel_ins_ids": [f"DC_INS_{m:05d}" for m in (1, 2, 3) if m != n] if n <= 3 else []}
          for n, text in enumerate(["What is the dog doing?", "Describe the red car.", "What is the dog doing now?",
                                    "Why is it raining?"], 1)}
    zh = {k: {**v, "instruction": text, "answer": "它在跑。"}
          for (k, v), text in zip(en.items(), ["狗在做什么？", "描述红色的汽车。", "狗现在在做什么？"])}
    (folder / "DC_instructions.json").write_text(json.dumps({"meta": {}, "data": en}))
    (folder / "DC_instructions_zh.json").write_text(json.dumps({"meta": {"language": "zh"}, "data": zh},
                                                               ensure_ascii=False))
    (folder / "DC_train.json").write_text(json.dumps({k: v["rel_ins_ids"] for k, v in en.items()}))
    write_jsonl(folder / "translation_failures.jsonl", [{"id": "DC_INS_00004", "lang": "zh",
                                                         "reason": "zh: not in the zh script"}])
    out = io.StringIO()
    assert main(["view", str(folder / "DC_instructions.json"), "--translations",
                 str(folder / "DC_instructions_zh.json")], env={}, stream=out) == 0, out.getvalue()
    return folder / "DC_instructions.json", folder / "DC_instructions_zh.json"


def test_release_files_side_by_side_with_coverage_and_links(tmp_path):
    en, zh = _release(tmp_path)
    report = build_report([en, zh], out=tmp_path / "rep")
    a, b = report.data["sources"]
    assert (a["label"], b["label"]) == ("DC", "DC zh")
    assert a["pairs_per_input"]["counts"] == [0, 1, 0, 1]  # from rel_ins_ids: one input of 3, one of 1
    assert b["translation"] == {"language": "zh", "pairs": 3, "english_pairs": 4, "coverage": 0.75,
                                "failures": {"total": 1, "distinct": 1, "top": [["not in the zh script", 1]]},
                                "failures_file": str(tmp_path / "translation_failures.jsonl")}
    assert b["question_types"] is None and a["cost"] is None  # no run folder behind these files
    cluster = report.data["duplicates"]["largest_clusters"][0]
    assert [(m["source"], m["id"]) for m in cluster["members"]][:2] == [("DC", "DC_INS_00001"), ("DC", "DC_INS_00003")]
    link = cluster["members"][0]["link"]
    assert link == "../DC_instructions_view/index.html#q=DC_INS_00001&lang=en"
    assert (tmp_path / "rep" / link.split("#")[0]).resolve().is_file()


def test_the_page_opens_in_chromium_with_every_plot(run, tmp_path):
    en, zh = _release(tmp_path)
    out = io.StringIO()
    code = main(["report", str(run), str(en), str(zh), "--out", str(tmp_path / "rep")], env={}, stream=out)
    assert code == 0, out.getvalue()
    assert "DC (v1): 6 queries, 7 pairs, 1 invalid, 2 errors; 1 exact repeat and 1 near duplicate besides (--dedup drops 2)" in out.getvalue()
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "<script" not in page  # offline, no code
    data = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    assert [s["label"] for s in data["sources"]] == ["DC (v1)", "DC", "DC zh"]
    _chromium()
    page_uri = (tmp_path / "rep" / "index.html").as_uri()
    proc = _run_chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", page_uri)
    dom = proc.stdout
    assert "</html>" in dom, proc.stderr[-2000:]
    for name in PLOTS:
        figure = re.search(rf'<figure class="plot" id="plot-{name}" data-plot="{name}">(.*?)</figure>', dom, re.S)
        assert figure is not None, f"plot {name} missing"
        assert "<svg" in figure.group(1) and "<text" in figure.group(1), name
        if name == "judge":  # this run was never judged: the plot says so (tests/test_judge.py draws one)
            assert "No judged run among the inputs" in figure.group(1)
        elif name == "grounding":  # written by hand, not by a plugin: no annotation (tests/test_grounding.py)
            assert "No run folder among the inputs whose plugin" in figure.group(1)
        elif name == "language_checks":  # no translation run here (tests/test_translate.py draws one)
            assert "No translation run among the inputs" in figure.group(1)
        else:
            assert len(figure.group(1)) > 2000, name
    ids = re.findall(r'\bid="([^"]+)"', dom)
    assert len(ids) == len(set(ids)), "the inline SVGs' ids clash"
    text = html.unescape(dom)
    assert "What is the man holding in his left hand now?" in text and "not in the zh script" in text
    assert 'href="../DC_instructions_view/index.html#q=DC_INS_00001&amp;lang=en"' in dom


def test_hostile_text_stays_text(tmp_path):
    bad = "</svg><script>alert(1)</script> $x$ & <b>"
    folder = tmp_path / "run"
    folder.mkdir()
    write_jsonl(folder / "pairs.jsonl", [{"id": "q", "pairs": [{"instruction": bad, "answer": "I'm sorry " + bad}],
                                          "problems": [bad]}])
    write_jsonl(folder / "invalid.jsonl", [{"id": "r", "pairs": [], "reason": bad}])
    data = build_report([folder]).data
    assert data["sources"][0]["why"]["invalid_reasons"]["top"][0][0] == bad.replace("1", "N")
    for plot in (plot_why, plot_signals):
        svg, table = plot(data)
        assert "<script" not in svg + table and svg.count("</svg>") == 1
    assert "&lt;/svg&gt;&lt;script&gt;" in "".join(plot_why(data))
    assert "<script" not in cluster_tables(data["duplicates"]) + examples(data["sources"])


def test_a_missing_extra_is_one_clear_error(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = io.StringIO()
    assert main(["report", str(run)], env={}, stream=out) == 2
    assert out.getvalue().startswith("error: the report's plots need matplotlib: pip install 'syphus[report]'")
    monkeypatch.setitem(sys.modules, "datasketch", None)
    out = io.StringIO()
    assert main(["export", str(run), "--dedup", "0.8", "--no-parquet"], env={}, stream=out) == 2
    assert "datasketch" in out.getvalue() and "syphus[report]" in out.getvalue()


def test_export_dedup_keeps_the_release_valid(run, tmp_path):
    out = io.StringIO()
    code = main(["export", str(run), "--dedup", "0.8", "--out", str(tmp_path / "x")], env={}, stream=out)
    assert code == 0, out.getvalue()
    assert "exported 5 instructions from 3 queries" in out.getvalue()
    assert "dropped 2 near-duplicate instructions (--dedup 0.8: 1 clusters" in out.getvalue()
    doc = json.loads((tmp_path / "x" / "DC_instructions.json").read_text())
    data, train = doc["data"], json.loads((tmp_path / "x" / "DC_train.json").read_text())
    assert list(data) == ["DC_INS_00001", "DC_INS_00002", "DC_INS_00003", "DC_INS_00005", "DC_INS_00007"]
    assert data["DC_INS_00001"]["instruction"] == "What is the man holding in his left hand?"  # the first is kept
    assert data["DC_INS_00005"]["rel_ins_ids"] == [] and data["DC_INS_00007"]["rel_ins_ids"] == []
    assert train == {k: v["rel_ins_ids"] for k, v in data.items()
                     if all(r > k for r in v["rel_ins_ids"])}  # one entry per visual input, of what was kept
    assert doc["meta"]["dedup"]["dropped"] == 2 and doc["meta"]["dedup"]["threshold"] == 0.8
    report = validate_files(tmp_path / "x" / "DC_instructions.json", train=tmp_path / "x" / "DC_train.json",
                            allow_no_images=True)
    assert report.ok, report.render()
    pandas = pytest.importorskip("pandas")
    table = pandas.read_parquet(tmp_path / "x" / "DC_instructions.parquet")
    assert list(table.index) == list(data)
    # without --dedup every pair is exported, as before
    out = io.StringIO()
    assert main(["export", str(run), "--out", str(tmp_path / "y"), "--no-parquet"], env={}, stream=out) == 0
    assert len(json.loads((tmp_path / "y" / "DC_instructions.json").read_text())["data"]) == 7


def test_a_section_is_one_small_class(run, tmp_path):
    """A new figure is a Section subclass and one more entry in the registry; the others stay as they were."""
    from syphus.release.report import SECTIONS
    from syphus.release.reportsection import Section

    class Questions(Section):
        name = "questions_asked"

        def start(self, inp):
            inp.state[self.name] = 0

        def pair(self, inp, pair):
            inp.state[self.name] += pair.instruction.rstrip().endswith("?")

        def figures(self, inp):
            return {"questions_asked": inp.state[self.name]}

        def overall(self, inputs):
            return {"questions_asked": sum(i.state[self.name] for i in inputs)}

    plain = build_report([run], out=tmp_path / "a", grounding=False).data
    more = build_report([run], out=tmp_path / "b", grounding=False, sections=SECTIONS + (Questions,)).data
    asked = sum(p["instruction"].rstrip().endswith("?") for line in (run / "pairs.jsonl").read_text().splitlines()
                for p in json.loads(line)["pairs"])
    assert asked and more["sources"][0]["questions_asked"] == asked and more["questions_asked"] == asked
    entry = more["sources"][0]
    entry.pop("questions_asked")
    assert entry == plain["sources"][0]
