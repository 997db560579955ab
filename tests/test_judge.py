"""syphus judge: each query's pairs scored against its own annotation, once, on the same engine."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from syphus.cli import main
from syphus.workflows.judge import CRITERIA, Judging, judge_id, verdicts
from tests.conftest import KEY, ROOT
from tests.fakeserver import Gate, Reply, requested_schema
from tests.helpers import lines, make_numbers, sigkill_when

ENV = {"OPENAI_API_KEY": KEY}
_PAIR = re.compile(r"\[(\d+)\] Instruction: (.*)\nAnswer: (.*)")


def annotation_of(body: dict) -> tuple[str, list[tuple[int, str]]]:
    """The annotation and the numbered answers of a judge request."""
    text = body["messages"][-1]["content"]
    head, _, tail = text.partition("\nPairs:\n")
    return head.removeprefix("Annotation:\n"), [(int(n), a) for n, _, a in _PAIR.findall(tail)]


def fair_judge(body: dict, n: int) -> Reply:
    """A judge that scores an answer 5 when its last word is in the annotation, else 1 (JSON or text alike)."""
    annotation, answers = annotation_of(body)
    out = []
    for i, answer in answers:
        word = re.findall(r"\w+", answer)[-1].lower()
        ok = word in annotation.lower()
        score = 5 if ok else 1
        out.append({"pair": i, **{c: score for c in CRITERIA},
                    "reason": "in the annotation" if ok else f"{word!r} is not in the annotation"})
    return Reply.ok(json.dumps({"verdicts": out}))


def answer_from_annotation(body: dict, n: int) -> Reply:
    """The generating model: two pairs a query, the first true to its annotation, the second invented."""
    text = body["messages"][-1]["content"]
    qid = re.search(r"<<(q\d{5})>>", text).group(1)
    pairs = [{"instruction": f"What is on the table in {qid}?", "answer": "A red ball"},
             {"instruction": f"Who sits at the table in {qid}?", "answer": "A tall giraffe"}]
    if requested_schema(body) is not None:
        return Reply.ok(json.dumps({"pairs": pairs}))
    return Reply.ok("".join(f"Question: {p['instruction']}\nAnswer: {p['answer']}\n\n" for p in pairs))


@pytest.fixture
def answered(tmp_path, monkeypatch, server):
    """A finished run of 6 Numbers queries (two pairs each), and the judge rubric in the project."""
    monkeypatch.chdir(tmp_path)
    make_numbers(tmp_path, 6)
    (tmp_path / "prompts" / "judge.yaml").write_text((ROOT / "prompts" / "judge.yaml").read_text())
    server.responder = answer_from_annotation
    assert main(["--name", "Numbers.numbers", "--base_url", server.base_url, "-q"], env=ENV,
                stream=io.StringIO()) == 0
    return tmp_path / "output" / "Numbers" / "v1"


def judge(server, run: Path, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["judge", str(run), "--base_url", server.base_url, "-q", *extra], env=ENV, stream=out)
    return code, out.getvalue()


def test_judge_scores_each_pair_against_its_own_annotation(answered, server):
    before = server.request_count
    server.responder = fair_judge
    code, out = judge(server, answered)
    assert code == 0, out
    assert server.request_count - before == 6  # one request per answered query, all its pairs in it
    got = list(verdicts(answered))
    assert len(got) == 12
    by_answer = {v.answer: v for v in got}
    assert by_answer["A red ball"].scores == {c: 5 for c in CRITERIA}
    assert by_answer["A tall giraffe"].scores == {c: 1 for c in CRITERIA}
    assert "'giraffe' is not in the annotation" in by_answer["A tall giraffe"].reason
    assert "mean score 3.00, 6 below 3" in out
    # the judged pairs are never touched; the verdicts sit beside them
    assert all(set(p) == {"instruction", "answer"} for r in lines(answered / "pairs.jsonl") for p in r["pairs"])
    assert (answered / "judge" / "v1" / "pairs.jsonl").exists()


def test_judge_rerun_judges_nothing_twice_and_a_changed_query_again(answered, server):
    server.responder = fair_judge
    assert judge(server, answered)[0] == 0
    first = server.request_count
    assert judge(server, answered)[0] == 0
    assert server.request_count == first  # every pair already judged: nothing sent
    # one query's pairs change (as --reparse or --retry_errors would): only it is judged again
    records = lines(answered / "pairs.jsonl")
    records[2]["pairs"][1]["answer"] = "A red ball"
    (answered / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert judge(server, answered)[0] == 0
    assert server.request_count == first + 1
    got = [v for v in verdicts(answered) if v.qid == records[2]["id"]]
    assert [v.scores["grounded"] for v in got] == [5, 5]  # the stale verdict (1) is no longer read
    assert len(list(verdicts(answered))) == 12


def test_judge_text_mode_reads_the_verdicts_from_prose(answered, server):
    server.responder = lambda body, n: Reply.ok("Here are my verdicts:\n```json\n"
                                                + fair_judge(body, n).text + "\n```")
    code, out = judge(server, answered, "--reply", "text")
    assert code == 0, out
    assert sorted(v.scores["correct"] for v in verdicts(answered)) == [1] * 6 + [5] * 6


def test_judge_keeps_a_short_verdict_list_with_a_problem(answered, server):
    def lazy(body, n):  # judges only the first pair, ignoring the schema's count
        reply = json.loads(fair_judge(body, n).text)
        return Reply.ok(json.dumps({"verdicts": reply["verdicts"][:1]}))
    server.responder = lazy
    code, out = judge(server, answered, "--reply", "text")
    assert code == 0, out
    recs = lines(answered / "judge" / "v1" / "pairs.jsonl")
    assert len(recs) == 6 and all(len(r["pairs"]) == 1 for r in recs)
    assert all(r["problems"] == ["no verdict for pair(s) 2"] for r in recs)


def test_judge_dry_run_sends_nothing(answered, server):
    before = server.request_count
    code, out = judge(server, answered, "--dry-run")
    assert code == 0, out
    assert server.request_count == before
    assert "6 queries to go" in out


def test_judge_needs_the_annotation_the_run_was_made_from(answered, server, tmp_path):
    (tmp_path / "datasets" / "numbers.py").rename(tmp_path / "numbers_moved.py")
    code, out = judge(server, answered)
    assert code == 2
    assert "datasets/numbers.py, which is not there" in out


def test_judge_of_a_folder_without_pairs_is_one_line(server, tmp_path):
    code, out = judge(server, tmp_path)
    assert code == 2 and out.count("\n") == 1 and "no pairs.jsonl here" in out


def test_judge_id_is_the_pairs_lasting_identity():
    a = [{"instruction": "Q?", "answer": "A."}]
    assert judge_id("q1", a) == judge_id("q1", [{"answer": "A.", "instruction": "Q?", "extra": 1}])
    assert judge_id("q1", a) != judge_id("q1", [{"instruction": "Q?", "answer": "B."}])
    assert judge_id("q1", a) != judge_id("q2", a)


def test_sigkill_during_judge_then_rerun_judges_every_pair_exactly_once(answered, server, tmp_path):
    gate = Gate()
    start = server.request_count
    server.responder = lambda body, n: fair_judge(body, n) if n - start < 3 else fair_judge(body, n).after(gate)
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "judge", str(answered), "--base_url",
                             server.base_url, "--num_threads", "2", "-q"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sigkill_when(proc, lambda: server.wait_for(lambda: server.request_count - start == 5 and server.in_flight == 2),
                 gate, str(server.stats()))
    judged_before = {r["id"] for r in lines(answered / "judge" / "v1" / "pairs.jsonl")}
    assert len(judged_before) == 3
    sent = server.request_count
    server.responder = fair_judge
    code, out = judge(server, answered)
    assert code == 0, out
    assert server.request_count - sent == 3  # only the three never settled
    ids = [r["id"] for r in lines(answered / "judge" / "v1" / "pairs.jsonl")]
    assert len(ids) == len(set(ids)) == 6
    assert len(list(verdicts(answered))) == 12


def test_judging_streams_the_run_in_flat_memory_of_ids(answered):
    judging = Judging(answered, ROOT / "prompts" / "judge.yaml")
    items = list(judging._load_query_inputs(None))
    assert [i["qid"] for i in items] == [f"q{i:05d}" for i in range(6)]
    assert items[0]["sentences"].startswith("Annotation:\n<<q00000>> a red ball on a table number 0\n\nPairs:\n[1]")


def test_report_shows_the_judges_scores_and_lowest_pairs(answered, server):
    from syphus.release.report import build_report
    from syphus.release.reportpage import render_page

    server.responder = fair_judge
    assert judge(server, answered)[0] == 0
    report = build_report([answered], out=answered / "report")
    j = report.data["sources"][0]["judge"]
    assert j["judged_pairs"] == 12
    assert j["histograms"]["grounded"] == [6, 0, 0, 0, 6]  # hand count: six giraffes at 1, six red balls at 5
    assert j["means"]["grounded"] == 3.0 and j["mean"] == 3.0
    assert len(j["lowest"]) == 12 and {e["answer"] for e in j["lowest"][:6]} == {"A tall giraffe"}
    assert "'giraffe' is not in the annotation" in j["lowest"][0]["reason"]
    page = render_page(report.data)
    assert 'data-plot="judge"' in page and "Lowest-scoring pairs" in page and "giraffe" in page


def test_export_min_score_keeps_what_passes_consistently(answered, server):
    from syphus.release.validate import validate_files

    server.responder = fair_judge
    assert judge(server, answered)[0] == 0
    # one query is re-parsed after judging: its pairs changed, so they count as never judged
    records = lines(answered / "pairs.jsonl")
    records[5]["pairs"][0]["answer"] = "A red ball, round"
    (answered / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = io.StringIO()
    assert main(["export", str(answered), "--prefix", "NU", "--min_score", "4"], stream=out) == 0, out.getvalue()
    assert "dropped 5 pairs scored below 4 and 2 never judged" in out.getvalue()
    release = answered / "export"
    data = json.loads((release / "NU_instructions.json").read_text())["data"]
    assert len(data) == 5 and {e["answer"] for e in data.values()} == {"A red ball"}
    assert all(e["rel_ins_ids"] == [] for e in data.values())  # each query kept one pair: no relatives
    train = json.loads((release / "NU_train.json").read_text())
    assert set(train) == set(data)
    import pyarrow.parquet as pq
    assert sorted(pq.read_table(release / "NU_instructions.parquet").column("id").to_pylist()) == sorted(data)
    meta = json.loads((release / "NU_instructions.json").read_text())["meta"]
    assert meta["judge"]["below"] == 5 and meta["judge"]["unjudged"] == 2
    checked = validate_files(release / "NU_instructions.json", train=release / "NU_train.json", allow_no_images=True)
    assert checked.ok, checked.render()


def test_export_min_score_of_a_run_never_judged_is_one_line(answered):
    out = io.StringIO()
    assert main(["export", str(answered), "--prefix", "NU", "--min_score", "4"], stream=out) == 2
    assert "never judged" in out.getvalue() and "syphus judge" in out.getvalue()


def test_judge_runs_in_batch_mode_and_a_rerun_submits_nothing(tmp_path, monkeypatch):
    """--mode batch: the judge queries go as batch lines (with their schema), and every verdict lands once."""
    import asyncio

    from syphus.config import load_config
    from syphus.workflows.judge import Judging, run_judge
    from tests.fakebatch import FakeBatchAPI

    monkeypatch.chdir(tmp_path)
    make_numbers(tmp_path, 5)
    with FakeBatchAPI() as bserver:
        bserver.responder = answer_from_annotation
        assert main(["--name", "Numbers.numbers", "--base_url", bserver.base_url, "-q"], env=ENV,
                    stream=io.StringIO()) == 0
        run = tmp_path / "output" / "Numbers" / "v1"
        bserver.responder = fair_judge
        cfg = load_config(None, {"name": "Numbers", "endpoint.base_url": bserver.base_url, "mode": "batch",
                                 "batch.poll_interval": 0.01})

        judging = Judging(run, ROOT / "prompts" / "judge.yaml")
        result = asyncio.run(run_judge(cfg, ENV, judging, install_signals=False))
        assert result.status == "complete", result.error
        batch_lines = [json.loads(x) for f in bserver.uploads for x in bserver.file_content(f["id"]).splitlines()
                       if x.strip()]
        assert len(batch_lines) == 5 and all("Pairs:\n[1]" in b["body"]["messages"][-1]["content"]
                                             for b in batch_lines)
        assert len(list(verdicts(run))) == 10
        uploads = len(bserver.uploads)
        assert asyncio.run(run_judge(cfg, ENV, Judging(run, ROOT / "prompts" / "judge.yaml"),
                                     install_signals=False)).status == "complete"
        assert len(bserver.uploads) == uploads
