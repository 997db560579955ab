"""Structured replies: the schema each endpoint form carries, the fallback to text, validation, plugin models.

Everything goes through the fake OpenAI server on a real socket; the server answers a
request that carries a schema with JSON fitting it (``tests.fakeserver.instance``), and can
be told which schema forms it takes (``schema_forms``), refusing others with a 400.
"""

from __future__ import annotations

import asyncio
import io
import json
import re

import pytest
from pydantic import BaseModel

from syphus.cli import main
from syphus.config import load_config
from syphus.engine.dryrun import dry_run
from syphus.engine.job import run_job
from syphus.engine.structure import nonempty_strings
from syphus.reply import pairs_model, strict_schema
from syphus.signals import requested_count
from tests.conftest import KEY, ROOT
from tests.fakebatch import FakeBatchAPI
from tests.fakeserver import FakeOpenAI, Reply
from tests.helpers import fake_translation, lines, make_numbers, query_id, settled

EXAMPLE = [f"scene_{i:04d}" for i in range(1, 9)]


def run(argv, server=None, env=None):
    out = io.StringIO()
    base = ["--base_url", server.base_url] if server is not None else []
    code = main(base + ["--quiet"] + list(argv), env={"OPENAI_API_KEY": KEY} if env is None else env, stream=out)
    return code, out.getvalue()


def folder_of(project, name="Example", version="v1"):
    return project / "output" / name / version


def meta(folder):
    return json.loads((folder / "meta.json").read_text())


# --- the schema, as each endpoint form carries it ---------------------------------------------------

def schema_of(body: dict, form: str) -> dict:
    if form == "openai":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["strict"] is True
        assert body["response_format"]["json_schema"]["name"] == "Pairs3"
        return body["response_format"]["json_schema"]["schema"]
    if form == "llamacpp":
        assert body["response_format"]["type"] == "json_object"
        return body["response_format"]["schema"]
    assert form == "vllm" and "response_format" not in body
    return body["structured_outputs"]["json"]


@pytest.mark.parametrize("kind,form", [("compatible", "openai"), ("compatible", "vllm"),
                                       ("compatible", "llamacpp"), ("azure", "openai")])
def test_the_schema_reaches_the_server_in_each_endpoint_form(project, kind, form):
    with FakeOpenAI(schema_forms=(form,)) as server:  # refuses every other form
        if kind == "azure":
            code, out = run(["--name", "Example.example", "--endpoint", "azure", "--base_url", server.root_url,
                             "--model", "dep"], env={"AZURE_OPENAI_API_KEY": KEY})
        else:
            code, out = run(["--name", "Example.example", "--schema_form", "auto" if form == "openai" else form],
                            server)
        assert code == 0, out
        bodies = [r.body for r in server.requests]
        if kind == "azure":
            assert all(r.path == "/openai/deployments/dep/chat/completions" for r in server.requests)
    assert len(bodies) == 8  # none refused, none sent twice
    expected = strict_schema(pairs_model(3))  # "Write three questions" in the Example's system message
    if form != "openai":  # grammars (vLLM, llama.cpp) are told that no string may be empty
        expected = nonempty_strings(expected)
        assert expected["properties"]["pairs"]["items"]["properties"]["answer"]["minLength"] == 1
    for body in bodies:
        assert schema_of(body, form) == expected
    pairs = expected["properties"]["pairs"]
    assert (pairs["minItems"], pairs["maxItems"]) == (3, 3)
    assert pairs["items"]["additionalProperties"] is False and pairs["items"]["required"] == ["instruction", "answer"]
    records = lines(folder_of(project) / "pairs.jsonl")
    assert sorted(r["id"] for r in records) == EXAMPLE
    assert all(len(r["pairs"]) == 3 and r["reply_format"] == "json" and r["problems"] == [] for r in records)
    assert meta(folder_of(project))["reply"] == {"requested": "auto", "used": "json", "form": form, "fallback": None}


def test_in_context_examples_are_shown_as_the_same_json(project, server):
    assert run(["--name", "Example.example", "--slice_end", "1"], server)[0] == 0
    messages = server.requests[0].body["messages"]
    prompt = json.loads((project / "prompts" / "example.json").read_text())
    assert messages[0]["content"] == prompt["system_message"]  # the system message goes as written
    for sent, written in zip(messages[1:-1], prompt["in_context"]):
        if written["role"] == "user":
            assert sent["content"] == written["content"]
            continue
        shown = json.loads(sent["content"])
        assert shown == {"pairs": [{"instruction": p["Question"], "answer": p["Answer"]} for p in written["content"]]}
        pairs_model(3).model_validate(shown)  # the examples fit the schema they teach


# --- the fallback to text ------------------------------------------------------------------------------

def test_an_endpoint_that_refuses_the_schema_makes_the_run_text_once(project):
    with FakeOpenAI(schema_forms=()) as server:
        code, out = run(["--name", "Example.example", "--num_threads", "2"], server)
        assert code == 0, out
        requests = server.requests
    folder = folder_of(project)
    records = lines(folder / "pairs.jsonl")
    assert sorted(r["id"] for r in records) == EXAMPLE and settled(folder)["errors"] == []
    assert all("reply_format" not in r and len(r["pairs"]) == 2 for r in records)  # text, parsed as text
    refused = [r for r in requests if "response_format" in r.body]
    assert 1 <= len(refused) <= 2  # what was on the wire before the first refusal came back, at most
    assert len(requests) == 8 + len(refused)  # each refused query sent once more, as text; nothing else twice
    assert all("response_format" not in r.body for r in requests[len(refused) + 1:])
    assert out.count("refused the reply schema") == 1  # said once
    reply = meta(folder)["reply"]
    assert reply["used"] == "text" and "is not supported" in reply["fallback"]
    by_id = {r["id"]: r for r in records}
    assert sum(by_id[q]["attempts"] for q in by_id) == len(requests)  # attempts count both tries


def test_reply_json_stops_with_the_fix_when_the_endpoint_refuses_the_schema(project):
    with FakeOpenAI(schema_forms=()) as server:
        code, out = run(["--name", "Example.example", "--reply", "json", "--num_threads", "1"], server)
        assert code == 3, out
        assert "refused the reply schema" in out and "--reply text" in out
        folder = folder_of(project)
        assert settled(folder) == {"pairs": [], "invalid": [], "errors": []}  # nothing settled, nothing paid
        code, out = run(["--name", "Example.example", "--reply", "text"], server)
        assert code == 0, out
    assert sorted(settled(folder)["pairs"]) == EXAMPLE


def test_a_400_that_is_not_about_the_schema_stays_the_query_own_error(project, server):
    make_numbers(project, 6)
    server.responder = (lambda body, n: Reply.status(400, body={"error": {"message": "too long", "code": "x"}})
                        if query_id(body) == "q00000" else Reply.ok(json.dumps(
                            {"pairs": [{"instruction": "a?", "answer": "b."}]})))
    code, out = run(["--name", "Numbers", "--num_threads", "1"], server)
    assert code == 0, out
    folder = folder_of(project, "Numbers")
    errors = lines(folder / "errors.jsonl")
    assert [e["id"] for e in errors] == ["q00000"] and errors[0]["attempts"] == 2  # tried as JSON, then as text
    assert "response_format" not in server.requests[1].body
    assert all("response_format" in r.body for r in server.requests[2:])  # JSON stays: the schema was not at fault
    assert meta(folder)["reply"]["used"] == "json" and "refused" not in out


# --- what comes back --------------------------------------------------------------------------------

def test_replies_that_break_the_schema_are_invalid_with_the_reason(project, server):
    make_numbers(project, 5)  # prompts/numbers.json asks for no number of pairs: one or more
    good = {"pairs": [{"instruction": "What is it?", "answer": "A ball."}]}
    replies = {
        "q00000": Reply.ok(json.dumps({"pairs": [{"instruction": "What is it?"}]})),  # an answer missing
        "q00001": Reply.ok(json.dumps({**good, "note": "extra"})),  # a key the schema refuses
        "q00002": Reply.ok("Question: What is it?\nAnswer: A ball."),  # a server that ignored the schema
        "q00003": Reply.ok('{"pairs": [{"instruction": "What is it?", "answer": "A b', finish_reason="length"),
        "q00004": Reply.ok(json.dumps(good)),
    }
    server.responder = lambda body, n: replies[query_id(body)]
    code, out = run(["--name", "Numbers"], server)
    assert code == 0, out
    folder = folder_of(project, "Numbers")
    invalid = {r["id"]: r for r in lines(folder / "invalid.jsonl")}
    pairs = {r["id"]: r for r in lines(folder / "pairs.jsonl")}
    assert sorted(invalid) == ["q00000", "q00001", "q00003"] and sorted(pairs) == ["q00002", "q00004"]
    assert invalid["q00000"]["reason"] == "the reply does not fit the schema: pairs.0.answer: field required"
    assert "note: extra inputs are not permitted" in invalid["q00001"]["reason"]
    assert "cut off at max_tokens before its JSON was complete" in invalid["q00003"]["reason"]
    assert invalid["q00003"]["truncated"] is True and invalid["q00003"]["raw"].startswith('{"pairs"')
    assert pairs["q00002"]["pairs"] == [{"instruction": "What is it?", "answer": "A ball."}]
    assert "not JSON" in pairs["q00002"]["problems"][0]
    assert pairs["q00004"]["problems"] == [] and all(r["reply_format"] == "json" for r in [*pairs.values(),
                                                                                         *invalid.values()])


def test_requested_counts_become_min_and_max_items():
    assert requested_count("Write three questions.") == (3, 3)
    assert requested_count("Ask four to six questions about the video") == (4, 6)
    assert requested_count("Write two or three questions") == (2, 3)
    assert requested_count("Describe the picture.") is None


SHIPPED_COUNTS = {"cgd": (3, 5), "dc": (4, 6), "e4d": (4, 6), "example": (3, 3), "laconv": (4, 6), "lacr": (2, 3),
                  "ladd": (1, 1), "sd": (3, 5), "tvc": (4, 6), "vst": (4, 6)}


def test_every_shipped_prompt_says_how_many_pairs():
    """SN asks for its conversations in each query (its own reply model); every other prompt is read."""
    got = {}
    for path in sorted((ROOT / "prompts").glob("*.json")):
        if path.stem not in ("sn", "translate"):
            got[path.stem] = requested_count(json.loads(path.read_text())["system_message"])
    assert got == SHIPPED_COUNTS
    assert requested_count("three exchanges") == (3, 3) and requested_count("two or three rounds") == (2, 3)


def test_dry_run_says_how_many_pairs_it_asks_for_or_that_it_cannot_tell(project):
    code, out = run(["--name", "Example.example", "--dry-run", "--base_url", "http://x/v1"])
    assert code == 0 and "pairs asked: 3 (read from the system message)" in out
    prompt = json.loads((project / "prompts" / "example.json").read_text())
    prompt["system_message"] = "You describe scenes. Format every pair as a 'Question:' and an 'Answer:' line."
    (project / "prompts" / "example.json").write_text(json.dumps(prompt))
    code, out = run(["--name", "Example.example", "--dry-run", "--base_url", "http://x/v1"])
    assert code == 0 and "pairs asked: not read from the system message" in out
    schema = strict_schema(pairs_model(4, 6))
    assert (schema["properties"]["pairs"]["minItems"], schema["properties"]["pairs"]["maxItems"]) == (4, 6)
    assert "minItems" in strict_schema(pairs_model())["properties"]["pairs"]  # at least one
    assert "maxItems" not in strict_schema(pairs_model())["properties"]["pairs"]


# --- plugins with their own reply model -----------------------------------------------------------

QUIZ = '''
from pydantic import BaseModel
from abstract_dataset import AbstractDataset
from syphus.reply import Reply


class Item(BaseModel):
    question: str
    answer: str
    difficulty: int


class Quiz(Reply):
    items: list[Item]

    def to_pairs(self, query_input):
        return [{"instruction": i.question, "answer": i.answer, "difficulty": i.difficulty} for i in self.items]


class Quizzes(AbstractDataset):
    reply_model = Quiz

    def __init__(self, name="Quizzes", prompt_path="prompts/numbers.json", query_inputs_path="x"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        for i in range(3):
            yield {"id": f"q{i:05d}", "sentences": f"<<q{i:05d}>> a quiz"}
'''


def test_a_plugin_declares_its_own_reply_model(project, server):
    make_numbers(project, 1)  # for prompts/numbers.json
    (project / "datasets" / "quizzes.py").write_text(QUIZ)
    code, out = run(["--name", "Quizzes"], server)
    assert code == 0, out
    schema = server.requests[0].body["response_format"]["json_schema"]
    assert schema["name"] == "Quiz"
    item = schema["schema"]["properties"]["items"]["items"]
    assert item["properties"] == {"question": {"type": "string"}, "answer": {"type": "string"},
                                  "difficulty": {"type": "integer"}}
    assert item["required"] == ["question", "answer", "difficulty"] and item["additionalProperties"] is False
    records = lines(folder_of(project, "Quizzes") / "pairs.jsonl")
    assert len(records) == 3 and all(r["pairs"][0]["difficulty"] == 1 for r in records)
    assert all(r["pairs"][0]["instruction"].startswith("question 1 of") for r in records)


def test_sn_conversations_as_a_reply_model(scenes, server):
    code, out = run(["--name", "SN", "--slice_end", "2"], server)
    assert code == 0, out
    body = server.requests[0].body
    schema = body["response_format"]["json_schema"]["schema"]
    convs = schema["properties"]["conversations"]
    assert (convs["minItems"], convs["maxItems"]) == (3, 3)  # one per candidate activity
    assert convs["items"]["required"] == ["activity", "human_role", "reason", "rounds"]
    example = json.loads(body["messages"][2]["content"])  # the text example, parsed and shown as the model
    assert set(example) == {"conversations"} and example["conversations"][0]["rounds"][0]["human"]
    records = lines(scenes / "output" / "SN" / "v1" / "pairs.jsonl")
    assert len(records) == 2
    for r in records:
        assert [(p["conversation"], p["round"]) for p in r["pairs"]] == [(c, k) for c in (1, 2, 3) for k in (1, 2)]
        assert all(p["activity"] and p["human_role"] and p["reason"] for p in r["pairs"])


# --- a structured run downstream: export, validate, translate, view, reparse, dry run, batch ---------------

def translator(body, n):
    """Answers a translation request in the JSON its schema asks for."""
    langs = re.findall(r"\(([a-z]{2})\)", body["messages"][0]["content"])
    a, b = re.fullmatch(r"<a>(.*)</a><b>(.*)</b>", body["messages"][-1]["content"], re.S).groups()
    if len(langs) == 1:
        return Reply.ok(json.dumps({"a": fake_translation(langs[0], a), "b": fake_translation(langs[0], b)}))
    return Reply.ok(json.dumps({"a": {x: fake_translation(x, a) for x in langs},
                                "b": {x: fake_translation(x, b) for x in langs}}))


def test_a_json_run_exports_validates_translates_and_views_like_a_text_run(project, server):
    (project / "prompts" / "translate.json").write_text((ROOT / "prompts" / "translate.json").read_text())
    assert run(["--name", "Example.example"], server)[0] == 0
    run_folder = folder_of(project)
    assert main(["export", str(run_folder), "--prefix", "EX"], stream=io.StringIO()) == 0
    export = run_folder / "export"
    assert len(json.loads((export / "EX_instructions.json").read_text())["data"]) == 24
    out = io.StringIO()
    assert main(["validate", str(export / "EX_instructions.json"), "--train", str(export / "EX_train.json"),
                 "--allow-no-images"], stream=out) == 0, out.getvalue()
    server.responder = translator
    sent = len(server.requests)
    out = io.StringIO()
    code = main(["translate", str(export / "EX_instructions.json"), "--langs", "zh,de", "--base_url",
                 server.base_url, "--quiet"], env={"OPENAI_API_KEY": KEY}, stream=out)
    assert code == 0, out.getvalue()
    body = server.requests[sent].body
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["a"]["required"] == ["zh", "de"] and schema["required"] == ["a", "b"]
    files = sorted(p.name for p in (project / "output").rglob("EX_instructions_*.json"))
    assert files == ["EX_instructions_de.json", "EX_instructions_zh.json"]
    zh = next((project / "output").rglob("EX_instructions_zh.json"))
    assert len(json.loads(zh.read_text())["data"]) == 24
    assert main(["view", str(export / "EX_instructions.json")], stream=io.StringIO()) == 0
    assert (export / "EX_instructions_view" / "index.html").exists()


def test_reparse_reads_each_record_in_the_format_it_was_asked_in(project, server):
    assert run(["--name", "Example.example", "--slice_end", "4"], server)[0] == 0  # JSON
    assert run(["--name", "Example.example", "--reply", "text"], server)[0] == 0  # the rest as text
    folder = folder_of(project)
    before = {r["id"]: r for r in lines(folder / "pairs.jsonl")}
    assert sum(1 for r in before.values() if r.get("reply_format") == "json") == 4
    assert run(["--name", "Example.example", "--reparse"])[0] == 0
    after = {r["id"]: r for r in lines(folder / "pairs.jsonl")}
    assert {k: (r["pairs"], r.get("reply_format")) for k, r in after.items()} == \
        {k: (r["pairs"], r.get("reply_format")) for k, r in before.items()}
    assert lines(folder / "invalid.jsonl") == []


def test_dry_run_counts_the_schema_in_the_prompt(project):
    def report(mode):
        cfg = load_config(None, {"name": "Example.example", "reply.mode": mode, "endpoint.base_url": "http://x/v1"})
        return dry_run(cfg, {"OPENAI_API_KEY": KEY})
    text, js = report("text"), report("auto")
    assert (text["reply_format"], js["reply_format"], js["schema_form"]) == ("text", "json", "openai")
    schema_chars = len(json.dumps({"response_format": {"type": "json_schema", "json_schema": {
        "name": "Pairs3", "schema": strict_schema(pairs_model(3)), "strict": True}}}, separators=(",", ":")))
    # the schema's tokens are added; the examples as JSON differ from the text ones by a few tokens only
    assert abs(js["prompt_tokens_per_query"] - text["prompt_tokens_per_query"] - schema_chars / 4) < 40


async def _no_sleep(_seconds):
    await asyncio.sleep(0)


def test_batch_request_lines_carry_the_schema(project):
    make_numbers(project, 3)
    with FakeBatchAPI() as server:
        cfg = load_config(None, {"name": "Numbers", "endpoint.base_url": server.base_url, "mode": "batch",
                                 "batch.poll_interval": 0.01})
        result = asyncio.run(run_job(cfg, {"OPENAI_API_KEY": KEY}, install_signals=False, sleep=_no_sleep))
        assert result.status == "complete"
        uploaded = [json.loads(x) for f in server.uploads for x in server.file_content(f["id"]).splitlines() if x]
    assert len(uploaded) == 3
    assert all(line["body"]["response_format"]["json_schema"]["strict"] for line in uploaded)
    records = lines(folder_of(project, "Numbers") / "pairs.jsonl")
    assert len(records) == 3 and all(r["reply_format"] == "json" and r["pairs"] for r in records)
    assert meta(folder_of(project, "Numbers"))["reply"]["used"] == "json"
