"""Diversity: ROUGE-L to an earlier instruction (bit-parallel LCS, MinHash candidates) and the spread of openings."""

from __future__ import annotations

import random

import numpy as np
import pytest

from syphus.release.diversity import EarlierSimilar, lcs, lcs_lengths, rouge_l, spread

WORDS = "what is the man woman dog holding in his her hand left right red blue car near table".split()


def test_rouge_l_by_hand():
    assert lcs("abcbdab", "bdcaba") == 4  # the textbook pair
    # "what is the man holding" / "what is the woman holding": LCS 4 of 5 and 5 -> 0.8
    assert rouge_l("what is the man holding".split(), "what is the woman holding".split()) == 0.8
    assert rouge_l([], ["a"]) == 0.0 and rouge_l(["a"], ["a"]) == 1.0


def test_the_bit_parallel_lcs_equals_the_plain_one():
    rng = random.Random(3)
    seqs = [[rng.randrange(12) for _ in range(rng.choice([0, 1, 3, 8, 20, 63, 64, 65, 90]))] for _ in range(300)]
    flat = np.array([t for s in seqs for t in s], dtype=np.uint32)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    i = np.array([rng.randrange(300) for _ in range(3000)])
    j = np.array([rng.randrange(300) for _ in range(3000)])
    got = lcs_lengths(flat, starts, lengths, i, j)
    assert got.tolist() == [lcs(seqs[a], seqs[b]) for a, b in zip(i.tolist(), j.tolist())]


def _exact(texts: list[list[str]], threshold: float) -> list[bool]:
    return [any(rouge_l(t, texts[k]) >= threshold - 1e-9 for k in range(i)) for i, t in enumerate(texts)]


def test_earlier_similar_matches_an_exact_scan_on_planted_edits():
    rng = random.Random(5)
    texts: list[list[str]] = []
    for _ in range(600):
        if texts and rng.random() < 0.4:  # an earlier one with a word or two changed
            t = list(rng.choice(texts))
            for _ in range(rng.randint(1, 3)):
                t[rng.randrange(len(t))] = rng.choice(WORDS)
        else:
            t = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
        texts.append(t)
    texts.append([])  # no words: never similar
    index = EarlierSimilar(threshold=0.7)
    for t in texts:
        index.add(t)
    found = index.similar()
    exact = _exact(texts, 0.7)
    assert not (found & ~np.array(exact)).any()  # every pair found is checked exactly: nothing below 0.7
    recall = (found & np.array(exact)).sum() / sum(exact)
    assert recall >= 0.98 and sum(exact) > 100
    assert not found[-1] and index.compared > 0


def test_the_first_of_repeats_is_not_similar_to_anything_earlier():
    index = EarlierSimilar()
    for t in ["describe the room", "a b c d e", "describe the room", "describe the room please"]:
        index.add(t.split())
    assert index.similar().tolist() == [False, False, True, True]


def test_spread():
    s = spread({"describe": 6, "what": 2})
    assert s["top"] == [["describe", 6, 0.75], ["what", 2, 0.25]] and s["distinct"] == 2
    assert s["entropy_bits"] == pytest.approx(0.811, abs=1e-3) and s["effective_number"] == pytest.approx(1.75, abs=0.01)
    assert spread({"a": 1, "b": 1, "c": 1, "d": 1})["effective_number"] == 4.0
    assert spread({})["total"] == 0


def test_the_report_section_on_a_hand_counted_run(tmp_path):
    """tests/test_report_figures.py's 10 pairs, counted by hand: "what's on the table?" repeats pair 1 and
    "Which car in the picture is red now?" has LCS 7 with "Which car in the picture is red?" (2*7/15 = 0.93);
    no other pair reaches 0.7. Openings: which 3, what 2, who, why, describe, list, (other) 1 each."""
    from syphus.release.report import build_report
    from tests.test_report_figures import PAIRS, write_run

    run = write_run(tmp_path / "output" / "Fixed" / "v1", PAIRS)
    d = build_report([run], out=tmp_path / "r", grounding=False).data["sources"][0]["diversity"]
    assert (d["rouge_l"]["instructions"], d["rouge_l"]["similar_to_earlier"], d["rouge_l"]["share"]) == (10, 2, 0.2)
    assert d["rouge_l"]["threshold"] == 0.7
    assert [k for k, _, _ in d["openings"]["top"][:2]] == ["which", "what"] and d["openings"]["distinct"] == 7
    assert d["openings"]["effective_number"] == pytest.approx(6.26, abs=0.01)
    assert dict((k, n) for k, n, _ in d["imperative_verbs"]["top"]) == {"describe": 1, "list": 1}
    assert d["first_words"]["top"][:2] == [["what's", 2, 0.2], ["which", 2, 0.2]]
    import io

    from syphus.cli import main
    out = io.StringIO()
    assert main(["report", str(run), "--out", str(tmp_path / "r2")], env={}, stream=out) == 0
    assert "diversity: 2 of 10 instructions (20.0%) at ROUGE-L >= 0.7 to an earlier one; 6.26 effective openings" \
        in out.getvalue()


def test_a_translation_has_no_diversity_figure(tmp_path):
    from syphus.release.report import build_report

    (tmp_path / "DC_instructions_de.json").write_text(
        '{"meta": {"language": "de"}, "data": {"DC_INS_00001": {"instruction": "Was ist das?", "answer": "Ein Hund.", '
        '"image_ids": [], "rel_ins_ids": []}}}')
    report = build_report([tmp_path / "DC_instructions_de.json"], out=tmp_path / "r")
    assert report.data["sources"][0]["diversity"] is None
