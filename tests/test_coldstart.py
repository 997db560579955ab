"""syphus coldstart: candidates on a seeded sample, ranked by simple signals; promote; nothing asked twice."""

from __future__ import annotations

import io
import json
import re

import pytest

from syphus.cli import main
from syphus.workflows.coldstart import forbidden_words, requested_pairs
from syphus.prompt import load_prompt
from tests.conftest import KEY, ROOT
from tests.fakeserver import Reply

GOOD = "Question: What is the cyclist waiting for?\nAnswer: A green light.\n" \
       "Question: What is next to him?\nAnswer: A bakery.\nQuestion: What is he wearing?\nAnswer: A yellow jacket."
LEAKY = "Question: What is in the bounding box?\nAnswer: A bicycle at coordinates 112, 240.\n" \
        "Question: What is in the bounding box?\nAnswer: A bicycle.\nQuestion: What does the caption say?\n" \
        "Answer: The caption says a cyclist waits."
ZERO = "I'm sorry, I cannot see the image."


@pytest.fixture
def candidates(project):
    (project / "prompts" / "example.candidates.json").write_text(json.dumps({"candidates": {
        "leaky": [{"role": "user", "content": "A LEAKY example scene"},
                  {"role": "assistant", "content": [{"Question": "What is in box 1?", "Answer": "A dog."}]}]}}))
    return project


def responder(body, n):
    examples = " ".join(m["content"] for m in body["messages"][1:-1])
    if not examples:
        return Reply.ok(ZERO)
    return Reply.ok(LEAKY if "LEAKY" in examples else GOOD)


def coldstart(server, *extra):
    out = io.StringIO()
    code = main(["coldstart", "--name", "Example", "--base_url", server.base_url, "--quiet", "--sample", "4",
                 "--seed", "1", *extra], env={"OPENAI_API_KEY": KEY}, stream=out)
    return code, out.getvalue()


def test_candidates_are_ranked_by_quality(candidates, server):
    server.responder = responder
    code, out = coldstart(server)
    assert code == 0, out
    order = [line.split()[0] for line in out.splitlines()[2:5]]
    assert order == ["current", "leaky", "zero-shot"]
    report = json.loads((candidates / "output" / "Example" / "coldstart-seed1-n4.json").read_text())
    by = {s["candidate"]: s for s in report["scores"]}
    assert by["current"]["parsed"] == 4 and by["current"]["leaks"] == 0 and by["current"]["repeated"] == 0
    assert by["leaky"]["leaks"] == 12 and by["leaky"]["repeated"] == 4
    assert by["zero-shot"]["parsed"] == 0 and by["zero-shot"]["refusals"] == 4
    assert len(report["sample"]) == 4 and len(server.requests) == 12
    # the grounding check: GOOD gives every scene the same three answers; only the cyclist's scene (in this
    # sample) has a bakery and a yellow jacket, and no scene has a green light
    assert "scene_0001" in report["sample"]
    assert by["current"]["grounded"] == round(2 / 12, 4) and by["zero-shot"]["grounded"] is None
    assert "grounded" in out.splitlines()[0] and " 17% " in out.splitlines()[2]


def test_the_sample_is_seeded_and_a_rerun_sends_nothing(candidates, server):
    server.responder = responder
    assert coldstart(server)[0] == 0
    first = json.loads((candidates / "output" / "Example" / "coldstart-seed1-n4.json").read_text())["sample"]
    sent = len(server.requests)
    code, out = coldstart(server)
    assert code == 0 and len(server.requests) == sent
    assert json.loads((candidates / "output" / "Example" / "coldstart-seed1-n4.json").read_text())["sample"] == first
    code, out = coldstart(server, "--seed", "2", "--candidate", "current")
    assert code == 0 and len(server.requests) == sent + 4


def test_promote_writes_a_prompt_the_engine_then_uses(candidates, server):
    server.responder = responder
    assert coldstart(server)[0] == 0
    sample = json.loads((candidates / "output" / "Example" / "coldstart-seed1-n4.json").read_text())["sample"]
    before = load_prompt(candidates / "prompts" / "example.json")
    out = io.StringIO()
    code = main(["coldstart", "--name", "Example", "--sample", "4", "--seed", "1", "--promote", sample[0]],
                env={}, stream=out)
    assert code == 0, out.getvalue()
    after = load_prompt(candidates / "prompts" / "example.json")
    assert len(after.in_context) == len(before.in_context) + 2
    assert after.in_context[-1]["content"][0] == {"Question": "What is the cyclist waiting for?",
                                                   "Answer": "A green light."}
    n = len(server.requests)
    out = io.StringIO()
    assert main(["--name", "Example", "--base_url", server.base_url, "--quiet", "--slice_end", "1"],
                env={"OPENAI_API_KEY": KEY}, stream=out) == 0
    assert len(server.requests[n].body["messages"]) == 1 + len(after.in_context) + 1


def test_promote_an_edited_answer(candidates, server):
    (candidates / "answer.txt").write_text("Question: Who waits?\nAnswer: A cyclist in yellow.\n")
    out = io.StringIO()
    code = main(["coldstart", "--name", "Example", "--promote", "scene_0001", "--edit", "answer.txt"],
                env={}, stream=out)
    assert code == 0, out.getvalue()
    last = load_prompt(candidates / "prompts" / "example.json").in_context[-2:]
    assert last[0]["content"].startswith("A cyclist in a yellow jacket")
    assert last[1]["content"] == [{"Question": "Who waits?", "Answer": "A cyclist in yellow."}]


def test_bad_candidates_file_names_the_problem(candidates, server):
    (candidates / "prompts" / "example.candidates.json").write_text(json.dumps({"candidates": {
        "broken": [{"role": "assistant", "content": "x"}]}}))
    code, out = coldstart(server)
    assert code == 2 and "example.candidates.json: broken" in out and "role" in out
    assert server.requests == []


def test_signals():
    assert requested_pairs("Write 5 question-answer pairs.") == 5
    assert requested_pairs("Describe the image.") is None
    assert forbidden_words("Do not mention the words image or picture.") == ["image", "picture"]


def test_the_candidates_side_by_side_in_the_viewer(candidates, server):
    server.responder = responder
    code, out = coldstart(server, "--view")
    assert code == 0, out
    index = candidates / "output" / "Example" / "coldstart-seed1-n4-view" / "index.html"
    assert index.exists() and f"viewer: {index.relative_to(candidates)}" in out
    chunk = (index.parent / "data" / "chunk-00000.js").read_text()
    assert '"current"' in chunk and '"leaky"' in chunk  # each candidate is a filterable "language"
    assert "What is the cyclist waiting for?" in chunk and "What is in the bounding box?" in chunk


def test_with_a_judge_the_candidates_are_ranked_by_its_mean_score_first(candidates, server):
    """The form signals prefer ``current``; a judge that finds its answers unsupported ranks ``leaky`` first."""
    def judged(body, n):
        if "Pairs:\n[1]" not in body["messages"][-1]["content"]:
            return responder(body, n)
        answers = re.findall(r"\nAnswer: (.*)", body["messages"][-1]["content"])
        score = 1 if "green light" in " ".join(answers) else 4  # GOOD invents a traffic light
        return Reply.ok(json.dumps({"verdicts": [{"pair": i, "grounded": score, "answerable": score, "correct": score,
                                                  "useful": score, "reason": "r"} for i in range(1, len(answers) + 1)]}))
    (candidates / "prompts" / "judge.yaml").write_text((ROOT / "prompts" / "judge.yaml").read_text())
    server.responder = judged
    code, out = coldstart(server, "--judge")
    assert code == 0, out
    order = [line.split()[1] for line in out.splitlines()[2:5]]
    assert order == ["leaky", "current", "zero-shot"]  # zero-shot gave no pairs: nothing judged, ranked last
    report = json.loads((candidates / "output" / "Example" / "coldstart-seed1-n4.json").read_text())
    by = {s["candidate"]: s for s in report["scores"]}
    assert by["leaky"]["judge"] == 4.0 and by["current"]["judge"] == 1.0 and by["zero-shot"]["judge"] is None
    assert by["current"]["judged"] == 12
    sent = len(server.requests)
    assert coldstart(server, "--judge")[0] == 0
    assert len(server.requests) == sent  # candidates and their verdicts are all reused


def test_folders_are_named_by_the_real_sample_size_and_old_names_are_reused(candidates, server):
    server.responder = responder
    out = io.StringIO()
    args = ["coldstart", "--name", "Example", "--base_url", server.base_url, "--quiet", "--sample", "20",
            "--seed", "1"]
    base = candidates / "output" / "Example"
    # a folder an earlier version named by the size asked for (the Example has 8 queries, not 20)
    assert main(args + ["--candidate", "current"], env={"OPENAI_API_KEY": KEY}, stream=out) == 0, out.getvalue()
    (base / "coldstart-current-seed1-n8").rename(base / "coldstart-current-seed1-n20")
    sent = len(server.requests)
    out = io.StringIO()
    assert main(args, env={"OPENAI_API_KEY": KEY}, stream=out) == 0, out.getvalue()
    names = sorted(p.name for p in base.iterdir())
    assert "coldstart-seed1-n8.json" in names and "coldstart-current-seed1-n8" in names
    assert not any("-n20" in name for name in names)
    assert len(server.requests) == sent + 2 * 8  # current was answered before: only leaky and zero-shot are sent
    table = out.getvalue()
    assert "repeated" in table and "forbidden" in table and "leaks" not in table.splitlines()[0]
