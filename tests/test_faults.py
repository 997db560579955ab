"""Hardening: no paid answer is lost, paid twice or stalled, whatever the plugin or the server does.

Each test guards one class of fault against the fake OpenAI server on a real socket.
Real processes killed at every write point and a second process on one folder are in
tests/test_crash.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from syphus.cli import main
from syphus.errors import StoreError
from syphus.engine.store import RunStore
from tests.conftest import KEY, ROOT
from tests.fakeserver import FakeOpenAI, Gate, Reply, default_answer
from tests.helpers import ManualClock, lines, make_numbers, query_id, settled, skewed_loops

FAULTY = '''
from abstract_dataset import AbstractDataset


class Faulty(AbstractDataset):
    def __init__(self, name="Faulty", prompt_path="prompts/numbers.json", query_inputs_path="x"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        for qid in ["q00000", "q00001", "q00002", "q00003", "q00004", "q00005", "q00006", "q00007"]:
            item = {"id": qid, "sentences": f"<<{qid}>> a scene"}
            if qid == "q00004":
                item["tags"] = {"a", "b"}  # a set: JSON cannot hold it
            if qid == "q00005":
                item["score"] = float("nan")
            yield item

    def build_messages(self, item):
        if item["id"] == "q00001":
            raise KeyError("caption")
        messages = super().build_messages(item)
        if item["id"] == "q00002":
            messages[-1]["content"] = {"not", "json"}  # the request body cannot be encoded
        if item["id"] == "q00007":
            return ["not a message"]  # breaks the engine's own steps (token estimate)
        return messages

    def parse_response(self, text, finish_reason):
        if "<<q00003>>" in text:
            raise ZeroDivisionError("parser bug")
        return super().parse_response(text, finish_reason)
'''


def run(argv, server=None, env=None):
    out = io.StringIO()
    base = ["--base_url", server.base_url] if server is not None else []
    code = main(base + ["--quiet"] + list(argv), env={"OPENAI_API_KEY": KEY} if env is None else env, stream=out)
    return code, out.getvalue()


def dead_port() -> int:
    """A loopback port with nobody listening (bound, then let go)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_of(project: Path, name: str = "Numbers") -> Path:
    return project / "output" / name / "v1"


def every_id_once(folder: Path) -> list[str]:
    s = settled(folder)
    ids = s["pairs"] + s["invalid"] + s["errors"]
    assert len(ids) == len(set(ids)), s
    return sorted(ids)


# --- 1. nothing unexpected kills a worker silently ------------------------------------------------


def test_an_exception_at_any_stage_of_one_query_ends_in_a_record(project, server):
    make_numbers(project, 1)  # for prompts/numbers.json
    (project / "datasets" / "faulty.py").write_text(FAULTY)

    def responder(body, n):
        qid = query_id(body)
        if qid == "q00006":  # a lone surrogate: valid JSON, not encodable as UTF-8
            return Reply.ok("Question: what is \ud800?\nAnswer: a broken character.")
        return Reply.ok(f"Question: what is <<{qid}>>?\nAnswer: it is {qid}.")

    server.responder = responder
    code, out = run(["--name", "Faulty", "--num_threads", "3"], server)
    assert code == 0, out
    folder = folder_of(project, "Faulty")
    assert every_id_once(folder) == [f"q{i:05d}" for i in range(8)]
    errors = {r["id"]: r for r in lines(folder / "errors.jsonl")}
    assert errors["q00001"]["kind"] == "plugin" and "KeyError" in errors["q00001"]["message"]
    assert errors["q00001"]["attempts"] == 0  # never sent
    assert errors["q00002"]["kind"] == "unencodable" and errors["q00002"]["attempts"] == 0
    assert errors["q00007"]["kind"] == "internal" and "AttributeError" in errors["q00007"]["message"]
    # a value JSON cannot hold in what the plugin attached: refused before anything is paid
    assert errors["q00004"]["kind"] == "unencodable" and "tags is a set" in errors["q00004"]["message"]
    assert errors["q00005"]["kind"] == "unencodable" and "score is nan" in errors["q00005"]["message"]
    assert errors["q00004"]["attempts"] == errors["q00005"]["attempts"] == 0
    # a reply that cannot be stored as UTF-8: an error record keeping the paid reply, escaped
    assert errors["q00006"]["kind"] == "unencodable" and "surrogate" in errors["q00006"]["message"]
    assert errors["q00006"]["attempts"] == 1 and errors["q00006"]["raw"].startswith("Question: what is ")
    assert "\\ud800" in (folder / "errors.jsonl").read_text()
    invalid = {r["id"]: r for r in lines(folder / "invalid.jsonl")}
    assert "ZeroDivisionError" in invalid["q00003"]["reason"]
    assert settled(folder)["pairs"] == ["q00000"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["counts"]["errors"] == 6
    # the settled per-item errors are not sent again by a plain rerun
    sent = len(server.requests)
    assert run(["--name", "Faulty"], server)[0] == 0 and len(server.requests) == sent


def test_a_record_that_cannot_be_written_stops_the_run_resumably(tmp_path):
    """Disk full at the third line: StoreError (exit 3), nothing half-counted, a torn line set aside."""
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] == 3:
            import os
            os.write(fd, bytes(data[:7]))  # a short write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        import os
        return os.write(fd, data)

    store = RunStore(tmp_path, write=write).open()
    store.write_answer({"id": "a", "pairs": [{"instruction": "i", "answer": "a"}], "usage": {}}, valid=True)
    store.write_answer({"id": "b", "pairs": [{"instruction": "i", "answer": "a"}], "usage": {}}, valid=True)
    with pytest.raises(StoreError, match="No space left on device.*run the same command again to resume"):
        store.write_answer({"id": "c", "pairs": [{"instruction": "i", "answer": "a"}], "usage": {}}, valid=True)
    assert store.totals["pairs"] == 2
    store.close()
    again = RunStore(tmp_path).open()
    assert "a" in again.answered and "b" in again.answered and "c" not in again.answered
    assert again.repaired == {"pairs.jsonl": 7}
    again.close()


def test_disk_full_mid_run_exits_3_and_the_rerun_completes(project, server, monkeypatch):
    """The engine turns a store failure into exit 3 and a resumable folder (RLIMIT-free: injected write)."""
    import os

    from syphus.engine import job

    make_numbers(project, 12)
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    real = job.RunStore
    monkeypatch.setattr(job, "RunStore", lambda folder: real(folder, write=write))
    code, out = run(["--name", "Numbers", "--num_threads", "2"], server)
    assert code == 3, out
    assert "No space left on device" in out and "resume" in out
    monkeypatch.setattr(job, "RunStore", real)
    code, out = run(["--name", "Numbers", "--num_threads", "2"], server)
    assert code == 0, out
    assert every_id_once(folder_of(project)) == [f"q{i:05d}" for i in range(12)]


# --- 3. Retry-After cannot stall a run ------------------------------------------------------------


@pytest.mark.parametrize("hint", ["86400", "inf", "1e308", "Fri, 31 Dec 2999 23:59:59 GMT", "garbage", "nan"])
@pytest.mark.parametrize("status", [429, 503])
async def test_a_huge_retry_after_waits_the_cap_then_retries(project, server, hint, status):
    from syphus.config import load_config
    from syphus.engine.job import run_job

    make_numbers(project, 3)
    server.enqueue(Reply.status(status, headers={"retry-after": hint}))
    t = ManualClock(free=True)
    cfg = load_config(None, {"name": "Numbers", "endpoint": {"base_url": server.base_url}, "num_threads": 1,
                             "retry": {"max_seconds": 30.0, "initial_wait": 0.5, "max_wait": 2.0}})
    result = await asyncio.wait_for(run_job(cfg, {"OPENAI_API_KEY": KEY},
                                            install_signals=False, clock=t.clock, sleep=t.sleep), timeout=30)
    assert result.status == "complete"
    assert sorted(settled(result.folder)["pairs"]) == ["q00000", "q00001", "q00002"]
    assert len(server.requests) == 4  # the refused one was tried again, not given up
    assert t.total <= 30.0 + 1e-6  # the limiter's pause and the retry sleep together stay under the cap
    if hint in ("garbage", "nan"):
        assert t.total <= 2.0 + 1e-6  # no usable hint: the ordinary backoff


HOSTILE_RATE_HEADERS = [
    {"x-ratelimit-limit-tokens": "200000", "x-ratelimit-remaining-tokens": "-5000000"},
    {"x-ratelimit-limit-requests": "1", "x-ratelimit-remaining-requests": "-1e300",
     "x-ratelimit-reset-requests": "99999h"},
    {"x-ratelimit-limit-tokens": "nan", "x-ratelimit-remaining-tokens": "nan"},
    {"x-ratelimit-limit-tokens": "inf", "x-ratelimit-remaining-tokens": "-inf"},
    {"x-ratelimit-limit-tokens": "1e308", "x-ratelimit-remaining-tokens": "1e308",
     "x-ratelimit-limit-requests": "0.0001", "x-ratelimit-remaining-requests": "0"},
]


@pytest.mark.parametrize("headers", HOSTILE_RATE_HEADERS)
async def test_rate_limit_headers_cannot_stall_a_run(project, server, headers):
    """What headers teach is clamped, and no limiter wait outlasts --max_retry_seconds (issue 22, item 11)."""
    from syphus.config import load_config
    from syphus.engine.job import run_job

    make_numbers(project, 4)
    server.responder = lambda body, n: Reply.ok(default_answer(body), headers=headers)
    t = ManualClock(free=True)
    cfg = load_config(None, {"name": "Numbers", "endpoint": {"base_url": server.base_url}, "num_threads": 1,
                             "retry": {"max_seconds": 30.0}})
    result = await asyncio.wait_for(run_job(cfg, {"OPENAI_API_KEY": KEY},
                                            install_signals=False, clock=t.clock, sleep=t.sleep), timeout=30)
    assert result.status == "complete"
    assert sorted(settled(result.folder)["pairs"]) == [f"q{i:05d}" for i in range(4)]
    assert max(t.slept, default=0.0) <= 30.0 + 1e-6  # -5000000 tokens left would be 25 minutes at 200k a minute
    assert t.total <= 3 * 30.0 + 1e-6  # three requests after the first answer, each waiting the cap at most
    limits = json.loads((result.folder / "meta.json").read_text())["limits"]
    assert limits["max_wait_seconds"] == 30.0


def test_retry_after_is_parsed_whatever_the_server_sends():
    from syphus.engine.client import retry_after_seconds
    assert retry_after_seconds({"retry-after": "86400"}) == 86400.0
    assert retry_after_seconds({"retry-after": "inf"}) == float("inf")
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0
    assert retry_after_seconds({"retry-after": "nan"}) is None
    assert retry_after_seconds({"retry-after": "Mon, 99 Foo 2024"}) is None
    assert retry_after_seconds({"retry-after-ms": "junk", "retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "Fri, 31 Dec 2999 23:59:59 GMT"}) > 1e10


# --- 4. --max-cost is a hard cap whatever the replies say -----------------------------------------

PRICES = "toy-model: {input: 1000.0, output: 1000.0}\n"  # $0.001 a token both ways


@pytest.mark.parametrize("fault", ["no_usage", "zero_usage", "timeout", "content_filter", "malformed",
                                   "max_tokens_extra"])  # n > 1 is refused up front (test_n_above_one_...)
def test_max_cost_is_a_hard_cap_whatever_the_replies_say(project, server, fault):
    (project / "prices.yaml").write_text(PRICES)
    make_numbers(project, 40)
    extra: dict = {}
    if fault == "max_tokens_extra":
        extra = {"max_tokens": 60}
    (project / "run.yaml").write_text(json.dumps({"generation": {"max_tokens": 20, "extra": extra},
                                                  "retry": {"initial_wait": 0.01, "max_wait": 0.05}}))

    def responder(body, n):
        text = "Question: a?\nAnswer: b."
        if fault == "no_usage":
            return Reply.ok(text, usage={})
        if fault == "zero_usage":
            return Reply.ok(text, usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
        if fault == "timeout":
            return Reply.hang(3600.0)  # cut short by the client's timeout (its clock moved by expire_hangs)
        if fault == "content_filter":
            return Reply.ok(None, finish_reason="content_filter", usage={})
        if fault == "malformed":
            return Reply.malformed(b"<html>gateway</html>")
        return Reply.ok(text, usage={})  # n and max_tokens: the server reports nothing either

    server.responder = responder
    cap = 0.6
    argv = ["--config", "run.yaml", "--name", "Numbers", "--model", "toy-model", "--pricing", "prices.yaml",
            "--num_threads", "4", "--timeout", "30", "--max_attempts", "2", "--max-cost", str(cap)]
    with expire_hangs(server, 30):
        code, out = run(argv, server)
    assert code == 4, out
    worst_completion = {"max_tokens_extra": 60}.get(fault, 20)
    prompts = [sum(len(m["content"]) for m in r.body["messages"]) for r in server.requests]
    # what the server could bill at most: every request sent, each at a generous prompt size and full completion
    could_bill = sum(p + worst_completion for p in prompts) * 0.001
    folder = folder_of(project)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["cost"]["spent_usd"] <= cap + 1e-9
    assert meta["cost"]["estimated_usd"] == pytest.approx(meta["cost"]["spent_usd"])  # none of it was reported
    assert len(server.requests) * worst_completion * 0.001 <= cap + 1e-9  # the completions alone fit the cap
    assert could_bill > 0
    if fault == "timeout":
        assert server.status_counts["hang"] == len(server.requests)  # every one cut short by the client
    # a restart remembers what was charged at the worst case and does not spend it again
    with expire_hangs(server, 30):
        code, out = run(argv, server)
    assert code == 4
    assert len(server.requests) * worst_completion * 0.001 <= cap + 1e-9
    assert json.loads((folder / "meta.json").read_text())["cost"]["spent_usd"] <= cap + 1e-9


@contextlib.contextmanager
def expire_hangs(server, timeout: float):
    """While the block runs ``syphus`` in this process, each time everything in flight is a held hang,
    move the run's clock past ``timeout``: the client's timeout fires at once instead of after real seconds."""
    done = threading.Event()

    def expire(loops):
        while True:
            server.wait_for(lambda: done.is_set() or 0 < server.hanging == server.in_flight, timeout=60)
            if done.is_set():
                return
            hung = server.status_counts["hang"]
            loops[-1].advance(timeout + 1)
            server.wait_for(lambda: done.is_set() or server.status_counts["hang"] > hung, timeout=60)

    with skewed_loops() as loops:
        clock_mover = threading.Thread(target=expire, args=(loops,))
        clock_mover.start()
        try:
            yield
        finally:
            done.set()
            server.wake()
            clock_mover.join()


# --- 6. a run that settles nothing is not a success -----------------------------------------------


def test_an_endpoint_wide_failure_stops_early_and_is_sent_again_after_the_fix(project, server):
    make_numbers(project, 200)
    server.responder = lambda body, n: Reply.status(404, body={"error": {
        "message": "The model `gpt-5-typo` does not exist", "type": "invalid_request_error",
        "code": "model_not_found"}})
    code, out = run(["--name", "Numbers", "--num_threads", "4"], server)
    assert code == 3, out
    assert "20 queries in a row failed the same way (not_found" in out and "--model" in out
    assert len(server.requests) < 40  # stopped after the first few, not 200 requests
    folder = folder_of(project)
    assert json.loads((folder / "meta.json").read_text())["status"] == "failed"
    server.responder = None  # fixed
    code, out = run(["--name", "Numbers", "--num_threads", "4"], server)
    assert code == 0, out
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(200)]
    assert settled(folder)["errors"] == []


def test_no_connection_at_all_stops_with_exit_3(project):
    make_numbers(project, 100)
    port = dead_port()
    code, out = run(["--name", "Numbers", "--base_url", f"http://127.0.0.1:{port}/v1", "--max_attempts", "1",
                     "--num_threads", "2"])
    assert code == 3, out
    assert "(connection" in out
    store = RunStore(folder_of(project)).open()
    assert len(store.failed) >= 20 and len(store.settled_errors) == 0  # nothing settled: a rerun sends them
    store.close()


def test_per_item_errors_stay_settled_and_do_not_trip_the_breaker(project, server):
    make_numbers(project, 30)
    server.responder = lambda body, n: Reply.status(400, body={"error": {"message": "bad", "code": "invalid"}})
    code, out = run(["--name", "Numbers"], server)
    assert code == 0, out
    assert len(settled(folder_of(project))["errors"]) == 30
    sent = len(server.requests)  # 30, plus a text try of each 400 met before JSON was settled
    assert 30 <= sent < 60
    assert run(["--name", "Numbers"], server)[0] == 0
    assert len(server.requests) == sent  # settled: not sent again


# --- 9. small truths ------------------------------------------------------------------------------


def test_attempts_counts_the_requests_really_sent(project, server):
    make_numbers(project, 3)
    server.responder = lambda body, n: {
        "q00000": Reply.status(400), "q00001": Reply.status(500)}.get(query_id(body), Reply.ok("Question: a?\nAnswer: b."))
    (project / "run.yaml").write_text(json.dumps({"retry": {"initial_wait": 0.01, "max_wait": 0.02}}))
    code, out = run(["--config", "run.yaml", "--name", "Numbers", "--max_attempts", "3", "--reply", "text"], server)
    assert code == 0, out
    errors = {r["id"]: r for r in lines(folder_of(project) / "errors.jsonl")}
    assert errors["q00000"]["attempts"] == 1
    assert errors["q00001"]["attempts"] == 3
    # too large for the configured budget: never sent
    code, out = run(["--name", "Numbers", "--dataset_version", "v2", "--tpm", "100", "--max_tokens", "500"], server)
    assert code == 0, out
    big = lines(project / "output" / "Numbers" / "v2" / "errors.jsonl")
    assert {r["kind"] for r in big} == {"too_large"} and {r["attempts"] for r in big} == {0}


def test_dry_run_reports_a_plugin_error_like_a_run(project, server):
    make_numbers(project, 3)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text().replace("for i in range(int(path)):",
                                                 "for i in range(int(path)):\n            1 / (i - 2)"))
    for extra in ([], ["--dry-run"]):
        code, out = run(["--name", "Numbers"] + extra, server)
        assert code == 2, out
        assert "numbers.py" in out and "ZeroDivisionError" in out and "Traceback" not in out


# --- 10. redaction is for messages, never for stored data ------------------------------------------

PLACEHOLDERS = '''
from abstract_dataset import AbstractDataset

IDS = ["none", "x", "id", "1", "EMPTY", "sk-no-key-required", "idx-none-1"]


class Placeholders(AbstractDataset):
    def __init__(self, name="Placeholders", prompt_path="prompts/numbers.json", query_inputs_path="x"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        for qid in IDS:
            yield {"id": qid, "sentences": f"<<{qid}>> there is none here", "image_ids": [f"{qid}_IMG_x"]}
'''


def _placeholder_answer(body: dict) -> str:
    qid = body["messages"][-1]["content"].split("<<", 1)[1].split(">>", 1)[0]
    return (f"Question: Is there an id on {qid}?\nAnswer: There is none; x marks the id 1, EMPTY, "
            f"sk-no-key-required and {qid}.")


@pytest.mark.parametrize("key", ["none", "x", "id", "1", "EMPTY", "sk-no-key-required"])
def test_stored_data_is_never_rewritten_by_redaction(project, server, key):
    """The placeholder keys of local servers are words: answers, ids, image ids and JSON keys keep them byte
    for byte, and the folder resumes without sending anything again."""
    make_numbers(project, 1)  # for prompts/numbers.json
    (project / "datasets" / "placeholders.py").write_text(PLACEHOLDERS)
    server.responder = lambda body, n: Reply.ok(_placeholder_answer(body))
    code, out = run(["--name", "Placeholders", "--reply", "text"], server, env={"OPENAI_API_KEY": key})
    assert code == 0, out
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {key}"}
    folder = folder_of(project, "Placeholders")
    sent = {query_id_of(r.body): _placeholder_answer(r.body) for r in server.requests}
    records = lines(folder / "pairs.jsonl")
    assert sorted(r["id"] for r in records) == sorted(sent) and len(sent) == 7
    for r in records:
        assert r["raw"] == sent[r["id"]]
        assert r["pairs"][0]["answer"].startswith("There is none; x marks the id 1, EMPTY, sk-no-key-required")
        assert r["meta"] == {"image_ids": [f"{r['id']}_IMG_x"]}
    for path in folder.iterdir():
        assert "***" not in path.read_text(encoding="utf-8"), path
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["dataset"]["name"] == "Placeholders" and meta["counts"]["queries_with_pairs"] == 7
    # resumed: everything is settled, nothing is sent again, nothing is rewritten
    before = (folder / "pairs.jsonl").read_bytes()
    code, out = run(["--name", "Placeholders", "--reply", "text"], server, env={"OPENAI_API_KEY": key})
    assert code == 0 and "7 skipped as already done" in out, out
    assert len(server.requests) == 7 and (folder / "pairs.jsonl").read_bytes() == before


def query_id_of(body: dict) -> str:
    return body["messages"][-1]["content"].split("<<", 1)[1].split(">>", 1)[0]


def test_secrets_are_redacted_in_logs_errors_and_the_lock_only(project, server):
    """A key the server echoes never reaches the log, stderr or an error record; a --base_url password is in
    no log line, error, meta.json, syphus.lock or "folder busy" message of another (real) process."""
    make_numbers(project, 6)
    # 1. the key, echoed in error bodies: a query's 400 (an error record) and the run's 401 (a stop)
    server.responder = lambda body, n: Reply.status(400, body={"error": {"message": f"key {KEY} rejected"}}) \
        if query_id(body) == "q00000" else Reply.ok("Question: a?\nAnswer: b.")
    code, out = run(["--name", "Numbers", "--reply", "text", "-v"], server)
    assert code == 0, out
    folder = folder_of(project)
    assert lines(folder / "errors.jsonl")[0]["message"] == "HTTP 400: key *** rejected"
    server.responder = lambda body, n: Reply.status(401, body={"error": {"message": f"Incorrect key {KEY}"}})
    code, out = run(["--name", "Numbers", "--reply", "text", "--retry_errors", "-v"], server)
    assert code == 3 and "HTTP 401" in out and "Incorrect key ***" in out, out
    for path in folder.iterdir():
        assert KEY not in path.read_text(encoding="utf-8"), path
    # 2. a password in the URL: a real second process holds the folder while its requests wait at a gate
    gate = Gate()
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.").after(gate)
    url = f"http://user:secret@127.0.0.1:{server.base_url.rsplit(':', 1)[1]}"
    args = ["--name", "Numbers", "--dataset_version", "v2", "--base_url", url, "--reply", "text", "-v"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    child = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=project, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    v2 = project / "output" / "Numbers" / "v2"
    try:
        assert server.wait_for(lambda: server.in_flight >= 1 or child.poll() is not None), "the child never sent"
        assert child.poll() is None, child.stdout.read()
        lock = (v2 / "syphus.lock").read_text()
        assert f'"pid": {child.pid}' in lock and "user:***@127.0.0.1" in lock and "secret" not in lock
        code, busy = run(args, env={})
        assert code == 2 and f"pid {child.pid}" in busy and "user:***@" in busy and "secret" not in busy, busy
    finally:
        gate.open()
        child_out = child.communicate(timeout=60)[0]
    assert child.returncode == 0, child_out
    basic = "Basic " + base64.b64encode(b"user:secret").decode()
    assert {r.headers.get("authorization") for r in server.requests[-6:]} == {basic}  # the password was used
    assert "secret" not in child_out
    for path in v2.iterdir():
        assert "secret" not in path.read_text(encoding="utf-8"), path
    meta = json.loads((v2 / "meta.json").read_text())
    assert meta["config"]["endpoint"]["base_url"] == url.replace("secret", "***")


# --- costs are counted at the endpoint that served them -------------------------------------------

VISION = '''
from abstract_dataset import AbstractDataset


class Pictures(AbstractDataset):
    def __init__(self, name="Pictures", prompt_path="prompts/numbers.json", query_inputs_path="{n}"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        for i in range(int(path)):
            yield {{"id": f"q{{i:05d}}", "sentences": f"<<q{{i:05d}}>> a red ball", "image_ids": [f"img{{i}}"]}}
'''


def pool_config(project: Path, a, b, **extra) -> str:
    """pool.yaml: endpoints a and b on two fake servers (models model-a, model-b), fast retries."""
    entries = [{"name": name, "kind": "compatible", "base_url": srv.base_url, "model": f"model-{name}",
                "key_env": "OPENAI_API_KEY"} for name, srv in (("a", a), ("b", b))]
    (project / "pool.yaml").write_text(json.dumps({"endpoints": entries, "retry": {
        "initial_wait": 0.01, "max_wait": 0.05, "cool_seconds": 30}, **extra}))
    return "pool.yaml"


def pictures(project: Path, n: int) -> None:
    """datasets/pictures.py: ``n`` queries with one 2048x2048 PNG each (tiny on disk: one flat colour)."""
    import base64

    import cv2
    import numpy as np

    make_numbers(project, 1)  # the prompt
    (project / "datasets" / "pictures.py").write_text(VISION.format(n=n))
    ok, data = cv2.imencode(".png", np.zeros((2048, 2048, 3), dtype=np.uint8))
    image = base64.b64encode(data.tobytes()).decode()
    (project / "images.json").write_text(json.dumps({f"img{i}": image for i in range(n)}))


def test_costs_are_counted_at_the_endpoint_that_served_them(project):
    """A cheap first endpoint (an image is 1 token as its model) must not let a dear second one pass the cap.

    The fake servers bill an image 765 tokens, what model-b's row (GPT-4o's tiles) counts for a 2048 px image.
    """
    from tests.fakeserver import FakeOpenAI

    pictures(project, 60)
    (project / "tokens.yaml").write_text("model-a: {method: fixed, tokens: 1}\n"
                                         "model-b: {method: tiles, base: 85, tile: 170}\n"
                                         "default: {method: tiles, base: 85, tile: 170}\n")
    (project / "prices.yaml").write_text("model-a: {input: 0.01, output: 0.01}\nmodel-b: {input: 10.0, output: 10.0}\n")
    cap = 0.10
    with FakeOpenAI() as a, FakeOpenAI() as b:
        cfg = pool_config(project, a, b, images={"path": "images.json", "tokens": "tokens.yaml", "detail": "high"},
                          cost={"pricing": "prices.yaml"})
        code, out = run(["--config", cfg, "--name", "Pictures", "--num_threads", "8", "--max_tokens", "50",
                         "--reply", "text", "--max-cost", str(cap)], env={"OPENAI_API_KEY": KEY})
        assert code == 4, out
        billed_b = sum(r.body and 765 * 10.0 / 1e6 for r in b.requests)  # the images alone, at model-b's price
        assert b.request_count > 0
    folder = folder_of(project, "Pictures")
    meta = json.loads((folder / "meta.json").read_text())
    spent = meta["cost"]["spent_usd"]
    assert spent <= cap + 1e-9
    assert billed_b <= cap
    figures = {e["name"]: e for e in meta["endpoints"]}
    records = lines(folder / "pairs.jsonl")
    by_b = [r for r in records if r["endpoint"] == "b"]
    assert figures["b"]["cost_usd"] == pytest.approx(
        sum((r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]) * 10.0 / 1e6 for r in by_b), abs=1e-6)
    # --dry-run prices each endpoint at its own model, its images counted as its model counts them
    code, out = run(["--config", cfg, "--name", "Pictures", "--max_tokens", "50", "--reply", "text", "--dry-run",
                     "--dataset_version", "dry"], env={"OPENAI_API_KEY": KEY})
    assert code == 0, out
    # model-a counts an image as 1 token, model-b as 765: each endpoint's line says its own
    row_a = next(line for line in out.splitlines() if line.strip().startswith("a: "))
    row_b = next(line for line in out.splitlines() if line.strip().startswith("b: "))
    assert "as model-a" in row_a and "(~1.0 of images)" in row_a
    assert "as model-b" in row_b and "(~765.0 of images)" in row_b
    per_b = float(row_b.split("~")[2].split(" ")[0])  # prompt tokens a query as model-b
    # routing by weight (no limits set): half the queries each; b's half at $10 per 1M both ways
    assert f"online ~${round(30 * (per_b + 50) * 10.0 / 1e6, 4)}" in row_b
    assert "cost across the pool: online ~$" in out and "batch on a ~$" in out


# --- structured replies are decided per endpoint ---------------------------------------------------

def test_structured_replies_are_decided_per_endpoint(project):
    """--reply auto over a pool where b answers 400 to the schema: b falls back to text, a keeps JSON."""
    from tests.fakeserver import FakeOpenAI

    make_numbers(project, 40)
    with FakeOpenAI() as a, FakeOpenAI(schema_forms=()) as b:
        cfg = pool_config(project, a, b)
        code, out = run(["--config", cfg, "--name", "Numbers", "--num_threads", "6"], env={"OPENAI_API_KEY": KEY})
        assert code == 0, out
        to_a, to_b = a.requests, b.requests
    folder = folder_of(project)
    assert settled(folder)["errors"] == [] and every_id_once(folder) == [f"q{i:05d}" for i in range(40)]
    assert all("response_format" in r.body for r in to_a)  # a takes the schema: JSON throughout
    refused = [r for r in to_b if "response_format" in r.body]
    assert 1 <= len(refused) <= 6  # only what was on the wire before b's first refusal came back
    assert b.status_counts[400] == len(refused)
    records = {r["id"]: r for r in lines(folder / "pairs.jsonl")}
    assert {r.get("reply_format", "text") for r in records.values() if r["endpoint"] == "a"} == {"json"}
    assert {r.get("reply_format", "text") for r in records.values() if r["endpoint"] == "b"} == {"text"}
    assert any(r["endpoint"] == "b" for r in records.values())
    reply = json.loads((folder / "meta.json").read_text())["reply"]
    assert reply["used"] == "mixed"
    assert reply["endpoints"]["a"] == {"requested": "auto", "used": "json", "form": "openai", "fallback": None}
    assert reply["endpoints"]["b"]["used"] == "text" and "is not supported" in reply["endpoints"]["b"]["fallback"]
    assert out.count("endpoint b refused the reply schema") == 1


# --- inputs cannot crash a run ----------------------------------------------------------------------

@pytest.mark.parametrize("which", ["config", "pricing"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "cp1252"])
def test_a_config_or_pricing_file_not_in_utf8_is_one_line_naming_it(project, server, which, encoding):
    make_numbers(project, 3)
    text = {"config": "num_threads: 2  # café\n", "pricing": "toy-model: {input: 1.0, output: 1.0}  # café\n"}
    path = project / f"{which}.yaml"
    path.write_bytes(text[which].encode(encoding))
    flag = {"config": ["--config", "config.yaml"], "pricing": ["--pricing", "pricing.yaml", "--model", "toy-model"]}
    for extra in ([], ["--dry-run"], ["--max-cost", "1"]):
        code, out = run(["--name", "Numbers", *flag[which], *extra], server)
        assert code == 2, out
        assert out.startswith(f"error: {which}.yaml: the {'config file' if which == 'config' else 'pricing table'} is ")
        assert "save it as UTF-8" in out and len(out.strip().splitlines()) == 1 and "Traceback" not in out
        assert ("UTF-16" in out) == encoding.startswith("utf-16")
    assert server.request_count == 0
    path.write_bytes(b"\xef\xbb\xbf" + text[which].encode("utf-8"))  # UTF-8 with a byte-order mark is UTF-8
    code, out = run(["--name", "Numbers", *flag[which], *(["--max-cost", "1"] if which == "pricing" else [])], server)
    assert code == 0, out


def test_coldstart_promote_edit_of_a_missing_or_unreadable_file_is_one_line_naming_the_flag(project):
    def run(argv):
        out = io.StringIO()
        return main(argv, env={"OPENAI_API_KEY": KEY}, stream=out), out.getvalue()

    prompt = (project / "prompts" / "example.json").read_bytes()
    code, out = run(["coldstart", "--name", "Example", "--promote", "scene_0001", "--edit", "missing.txt"])
    assert code == 2, out
    assert out.startswith("error: --edit missing.txt: cannot read") and len(out.strip().splitlines()) == 1
    (project / "answer.txt").write_bytes("Question: What is red?\nAnswer: The ball.\n".encode("utf-16"))
    code, out = run(["coldstart", "--name", "Example", "--promote", "scene_0001", "--edit", "answer.txt"])
    assert code == 2, out
    assert out.startswith("error: answer.txt: the --edit file is UTF-16 text") and "Traceback" not in out
    assert (project / "prompts" / "example.json").read_bytes() == prompt  # nothing written


@pytest.mark.parametrize("setting, env, flags, names", [
    ("key with a line ending", {"OPENAI_API_KEY": KEY + "\r"}, [], "OPENAI_API_KEY"),
    ("key with a control character", {"OPENAI_API_KEY": "sk-\x00abc12345"}, [], "OPENAI_API_KEY"),
    ("URL without a scheme", {"OPENAI_API_KEY": KEY}, ["--base_url", "127.0.0.1:8000/v1"], "--base_url"),
    ("port out of range", {"OPENAI_API_KEY": KEY}, ["--base_url", "http://127.0.0.1:99999/v1"], "--base_url"),
    ("password and key both", {"OPENAI_API_KEY": KEY}, ["--base_url", "http://u:pw@127.0.0.1:9/v1"], "--base_url"),
])
def test_a_request_that_can_never_be_sent_is_never_charged_nor_settled(project, server, setting, env, flags, names):
    """Configuration no request can be made with is one line (exit 2) naming the setting, before anything is
    sent, charged or written; the same run with the setting fixed then sends every query once."""
    out = io.StringIO()
    args = ["--name", "Example.example", "--base_url", server.base_url, *flags]
    code = main(args + ["--max_cost", "1", "--price_as", "gpt-4o", "--pricing", str(ROOT / "configs" / "pricing.yaml")],
                env=env, stream=out)
    text = out.getvalue()
    assert code == 2, text
    assert text.count("\n") == 1 and names in text, text
    assert KEY not in text
    assert server.request_count == 0
    folder = project / "output" / "Example" / "v1"
    assert not any((folder / f).exists() for f in ("pairs.jsonl", "invalid.jsonl", "errors.jsonl"))


def test_n_above_one_is_refused_before_anything_is_paid(project, server, tmp_path):
    """n > 1 pays for n replies and a run keeps one: refused up front, in the run's generation and in a pool's."""
    for config in ({"generation": {"extra": {"n": 3}}},
                   {"endpoints": [{"name": "a", "kind": "compatible", "base_url": server.base_url,
                                   "generation": {"extra": {"n": 2}}}]}):
        path = tmp_path / "n.yaml"
        path.write_text(json.dumps(config))
        out = io.StringIO()
        code = main(["--name", "Example.example", "--base_url", server.base_url, "--config", str(path)],
                    env={"OPENAI_API_KEY": KEY}, stream=out)
        assert code == 2 and "n > 1 would pay for" in out.getvalue() and out.getvalue().count("\n") == 1, \
            out.getvalue()
    assert server.request_count == 0


async def test_a_request_aiohttp_refuses_to_build_is_fatal_and_never_billed(server):
    """Past the checks before the run (an endpoint built by hand): nothing leaves the machine, so the
    error is the run's (fix and rerun), never a charge or a settled query."""
    from syphus.config import GenerationConfig
    from syphus.engine.client import ChatClient
    from syphus.engine.endpoint import Endpoint
    from syphus.errors import FatalError

    endpoint = Endpoint("compatible", server.base_url + "/chat/completions", "m",
                        {"Authorization": "Bearer sk-broken\r\nX-Injected: 1"})
    async with ChatClient(endpoint, GenerationConfig()) as client:
        with pytest.raises(FatalError) as info:
            await client.complete([{"role": "user", "content": "hi"}])
    assert "nothing was sent" in str(info.value)
    assert server.request_count == 0


def test_a_run_in_which_nothing_succeeded_is_not_a_success(project):
    """However few the queries (8, under the 20-in-a-row breaker), a run the endpoint failed throughout exits 3
    with one rule and one message: nothing settled, the same command sends them again."""
    make_numbers(project, 8)
    port = dead_port()
    code, out = run(["--name", "Numbers", "--base_url", f"http://127.0.0.1:{port}/v1", "--max_attempts", "1",
                     "--num_threads", "2"])
    assert code == 3, out
    assert "all 8 queries failed at the endpoint" in out and "will be sent again" in out
    assert "--retry_errors" not in out
    store = RunStore(folder_of(project)).open()
    assert len(store.failed) == 8 and len(store.settled_errors) == 0
    store.close()


def test_a_query_is_settled_only_by_its_own_answer(project, server):
    """An endpoint that answers 401 is the endpoint's problem: the queries whose last attempt it refused are
    not settled, and a rerun sends them; and pairs a plugin's own parser gives without an answer go to
    invalid.jsonl with the reason instead of crashing export."""
    make_numbers(project, 6)
    with FakeOpenAI() as dead:
        dead.responder = lambda body, n: Reply.status(401, body={"error": {"message": "bad key"}})
        config = project / "pool.yaml"
        config.write_text(json.dumps({"endpoints": [
            {"name": "dead", "kind": "compatible", "base_url": dead.base_url, "weight": 100},
            {"name": "live", "kind": "compatible", "base_url": server.base_url}]}))
        server.responder = lambda body, n: Reply.ok(f"Question: What is {query_id(body)}?\nAnswer: A ball.")
        code, out = run(["--name", "Numbers", "--config", str(config), "--max_attempts", "1", "--num_threads", "1",
                         "--reply", "text"])
    errors = lines(folder_of(project) / "errors.jsonl")
    assert [e["kind"] for e in errors] == ["refused"], out  # its one attempt met the dead endpoint
    store = RunStore(folder_of(project)).open()
    assert len(store.settled_errors) == 0 and len(store.failed) == 1  # the endpoint's failure, not the query's
    store.close()
    before = server.request_count
    code, out = run(["--name", "Numbers", "--base_url", server.base_url, "--reply", "text"], server=server)
    assert code == 0, out
    assert server.request_count == before + 1  # a plain rerun sends exactly that query
    assert sorted(r["id"] for r in lines(folder_of(project) / "pairs.jsonl")) == [f"q{i:05d}" for i in range(6)]

    # a plugin parser's pair without an answer: held to what JSON mode's pairs are held to
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text() + '''
    def parse_response(self, text, finish_reason):
        from syphus.parse import ParseResult
        return ParseResult(pairs=[{"instruction": "What is it?"}, {"instruction": "Where?", "answer": ""}])
''')
    from syphus import plugins
    plugins._loaded.clear()  # the plugin file changed
    code, out = run(["--name", "Numbers", "--base_url", server.base_url, "--reply", "text", "--repairs", "0",
                     "--dataset_version", "v2"], server=server)
    assert code == 0, out
    bad = lines(project / "output" / "Numbers" / "v2" / "invalid.jsonl")
    assert len(bad) == 6 and "pair 1: no string 'answer' (dropped)" in bad[0]["reason"]
    assert main(["export", str(project / "output" / "Numbers" / "v2"), "--prefix", "NU"], stream=io.StringIO()) == 0
