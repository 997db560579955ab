"""A run end to end (``syphus.engine.job``: plugin, endpoint, limits, runner, store, meta) against the fake
OpenAI server over a real socket, through the CLI or ``run_job`` with a clock the test moves."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from syphus import plugins
from syphus.cli import main
from syphus.config import load_config
from syphus.engine.job import run_job
from syphus.engine.store import RunStore
from tests.conftest import KEY
from tests.fakeserver import Gate, Reply
from tests.helpers import ManualClock, lines, make_numbers, query_id, settled, skewed_loops

# Backoff waits of milliseconds: the policy is the real one, only its scale is small. Passed as a
# run config file, like a user's, so no class default is touched.
FAST_RETRY = "retry:\n  initial_wait: 0.01\n  max_wait: 0.05\n"


def run(argv, env=None, server=None):
    """``syphus`` in this process (the working directory is the test's project), with FAST_RETRY."""
    out = io.StringIO()
    env = {"OPENAI_API_KEY": KEY} if env is None else env
    base = ["--base_url", server.base_url] if server is not None else []
    config = Path("fast_retry.yaml")
    config.write_text(FAST_RETRY)
    code = main(base + ["--config", str(config), "--quiet"] + list(argv), env=env, stream=out)
    return code, out.getvalue()


async def run_on(clock: ManualClock, server, **config):
    """``run_job`` on ``clock``: every wait of the engine (limiter, backoff, Retry-After) is on it."""
    cfg = load_config(None, {"endpoint": {"base_url": server.base_url}, **config})
    return await run_job(cfg, {"OPENAI_API_KEY": KEY}, install_signals=False, clock=clock.clock, sleep=clock.sleep)


def test_retry_config_reaches_the_run_and_leaves_the_defaults_alone(project, server):
    from syphus.config import RetryConfig
    make_numbers(project, 1)
    assert run(["--name", "Numbers.numbers"], server=server)[0] == 0
    meta = json.loads((project / "output" / "Numbers" / "v1" / "meta.json").read_text())
    assert (meta["config"]["retry"]["initial_wait"], meta["config"]["retry"]["max_wait"]) == (0.01, 0.05)
    assert (RetryConfig().initial_wait, RetryConfig().max_wait) == (1.0, 60.0)


def test_example_run_end_to_end(project, server):
    code, out = run(["--name", "Example.example", "--num_threads", "4"], server=server)
    assert code == 0, out
    folder = project / "output" / "Example" / "v1"
    records = lines(folder / "pairs.jsonl")
    assert sorted(r["id"] for r in records) == [f"scene_{i:04d}" for i in range(1, 9)]
    # JSON by default: the schema asks for the three pairs the system message wants
    assert all(len(r["pairs"]) == 3 and r["raw"] and r["usage"]["prompt_tokens"] > 0 for r in records)
    assert all(r["reply_format"] == "json" and r["problems"] == [] for r in records)
    body = server.requests[0].body
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    example = json.loads(body["messages"][2]["content"])  # the examples are shown as the schema's JSON
    assert example["pairs"][0] == {"instruction": "What is the boy doing?",
                                   "answer": "He is throwing a frisbee to his dog across an open field."}
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["json_schema"]["strict"] is True
    assert (schema["properties"]["pairs"]["minItems"], schema["properties"]["pairs"]["maxItems"]) == (3, 3)
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 1024
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["counts"]["pairs"] == 24
    assert meta["endpoint"]["kind"] == "compatible"
    assert meta["reply"] == {"requested": "auto", "used": "json", "form": "openai", "fallback": None}
    assert "8 queries with 24 pairs" in out


def test_example_run_as_text(project, server):
    code, out = run(["--name", "Example.example", "--reply", "text"], server=server)
    assert code == 0, out
    records = lines(project / "output" / "Example" / "v1" / "pairs.jsonl")
    assert all(len(r["pairs"]) == 2 and "reply_format" not in r for r in records)
    body = server.requests[0].body
    assert "response_format" not in body
    assert body["messages"][2]["content"].startswith("Question: What is the boy doing?\nAnswer: He is")


@pytest.mark.parametrize("name", ["Example.example", "example.Example", "Example"])
def test_three_name_forms(project, server, name):
    code, out = run(["--name", name, "--slice_end", "2"], server=server)
    assert code == 0, out
    assert len(lines(project / "output" / "Example" / "v1" / "pairs.jsonl")) == 2


def test_unknown_name_is_one_clear_error(project, server):
    code, out = run(["--name", "Nope.nothing"], server=server)
    assert code == 2
    assert "no such dataset" in out and "example.Example" in out
    assert server.requests == []


def test_exactly_once_under_faults(project, server, monkeypatch):
    """Every query ends in exactly one file; nothing answered is requested again."""
    make_numbers(project, 60)
    faults = {
        1: Reply.status(429, headers={"retry-after-ms": "20"}), 2: Reply.status(500), 3: Reply.status(503),
        4: Reply.malformed(), 5: Reply.drop(), 6: Reply.hang(3600.0), 7: Reply.malformed(b"<html>oops</html>"),
        8: Reply.status(502), 9: Reply.status(408),
    }
    answered_at: dict[str, int] = {}
    sent: list[tuple[int, str]] = []
    lock = threading.Lock()

    def responder(body, n):
        qid = query_id(body)
        with lock:
            sent.append((n, qid))
        if n in faults:
            return faults[n]
        number = int(qid[1:])
        if number % 10 == 3:
            reply = Reply.ok("I cannot help with that, sorry.")  # unparseable: invalid
        elif number % 10 == 7:
            reply = Reply.ok("Question: a?\nAnswer: b.\nQuestion: c?\nAnswer: cut of", finish_reason="length")
        elif number == 42:
            reply = Reply.status(400, body={"error": {"message": "bad", "code": "invalid_request"}})
        else:
            reply = Reply.ok(f"1. **Question:** What is {qid}?\n**Answer:** It is {qid}.")
        with lock:
            answered_at.setdefault(qid, n)
        return reply

    server.responder = responder
    timeout = 30.0
    settled_ids: set[str] = set()  # written by the run (a spy: the real write runs first)
    for name in ("write_answer", "write_error"):
        def spy(self, record, *args, _write=getattr(RunStore, name), **kwargs):
            _write(self, record, *args, **kwargs)
            with lock:
                settled_ids.add(record["id"])
            server.wake()
        monkeypatch.setattr(RunStore, name, spy)

    def expire(loops):
        """Once the hang is all that is left (the other 59 written), jump past its timeout."""
        def rest_settled():
            with lock:
                return len(settled_ids) == 59
        if server.wait_for(lambda: server.hanging == server.in_flight == 1 and rest_settled(), timeout=60):
            loops[-1].advance(timeout + 1)

    with skewed_loops() as loops:
        clock_mover = threading.Thread(target=expire, args=(loops,))
        clock_mover.start()
        code, out = run(["--name", "Numbers.numbers", "--num_threads", "8", "--timeout", str(timeout),
                         "--max_attempts", "6", "--repairs", "0"],
                        server=server)  # unparseable replies stay invalid here: repairs have tests of their own
        clock_mover.join()
    assert code == 0, out
    assert server.status_counts["hang"] == 1  # the client's timeout cut it short
    folder = project / "output" / "Numbers" / "v1"
    s = settled(folder)
    every = s["pairs"] + s["invalid"] + s["errors"]
    assert sorted(every) == [f"q{i:05d}" for i in range(60)]  # each exactly once
    assert len(set(every)) == len(every)
    assert sorted(s["invalid"]) == [f"q{i:05d}" for i in range(3, 60, 10)]
    assert s["errors"] == ["q00042"]
    assert lines(folder / "errors.jsonl")[0]["kind"] == "bad_request"
    truncated = [r for r in lines(folder / "pairs.jsonl") if r["truncated"]]
    assert len(truncated) == 6 and all(len(r["pairs"]) == 1 for r in truncated)
    for qid, first in answered_at.items():  # no request for an id after its answer was sent
        assert [n for n, q in sent if q == qid and n > first] == []
    retried = lines(folder / "pairs.jsonl") + lines(folder / "invalid.jsonl")
    assert sum(r["attempts"] for r in retried) == len(retried) + len(faults)


def test_retries_give_up_and_record_the_error(project, server):
    make_numbers(project, 3)
    server.responder = lambda body, n: Reply.status(500) if query_id(body) == "q00001" else Reply.ok(
        "Question: a?\nAnswer: b.")
    code, out = run(["--name", "Numbers.numbers", "--max_attempts", "3"], server=server)
    assert code == 0
    errors = lines(project / "output" / "Numbers" / "v1" / "errors.jsonl")
    assert [(e["id"], e["kind"], e["status"], e["attempts"]) for e in errors] == [("q00001", "server_error", 500, 3)]
    assert sum(1 for r in server.requests if query_id(r.body) == "q00001") == 3
    assert "the same command sends them again" in out and "--retry_errors" not in out  # a 500 is the endpoint's


def test_retry_errors_flag_and_plain_rerun(project, server):
    make_numbers(project, 5)
    server.responder = lambda body, n: Reply.status(400) if query_id(body) in ("q00001", "q00003") else Reply.ok(
        "Question: a?\nAnswer: b.")
    assert run(["--name", "Numbers.numbers"], server=server)[0] == 0
    folder = project / "output" / "Numbers" / "v1"
    assert sorted(settled(folder)["errors"]) == ["q00001", "q00003"]
    before = len(server.requests)
    assert run(["--name", "Numbers.numbers"], server=server)[0] == 0
    assert len(server.requests) == before  # a plain rerun sends nothing for settled ids
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.")
    code, out = run(["--name", "Numbers.numbers", "--retry_errors"], server=server)
    assert code == 0, out
    assert sorted(query_id(r.body) for r in server.requests[before:]) == ["q00001", "q00003"]
    s = settled(folder)
    assert sorted(s["pairs"]) == [f"q{i:05d}" for i in range(5)] and s["errors"] == []
    assert json.loads((folder / "meta.json").read_text())["counts"]["errors"] == 0


def test_401_stops_the_run_before_more_is_spent(project, server):
    make_numbers(project, 100)
    server.responder = lambda body, n: Reply.status(
        401, body={"error": {"message": f"Incorrect API key provided: {KEY}.", "code": "invalid_api_key"}})
    code, out = run(["--name", "Numbers.numbers", "--num_threads", "4"], server=server)
    assert code == 3
    assert "OPENAI_API_KEY" in out and "HTTP 401" in out
    assert len(server.requests) <= 4
    assert KEY not in out
    s = settled(project / "output" / "Numbers" / "v1")
    assert s == {"pairs": [], "invalid": [], "errors": []}


def test_insufficient_quota_is_fatal(project, server):
    make_numbers(project, 20)
    server.responder = lambda body, n: Reply.status(
        429, body={"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}})
    code, out = run(["--name", "Numbers.numbers", "--num_threads", "2"], server=server)
    assert code == 3 and "quota" in out
    assert len(server.requests) <= 2


def test_key_never_appears_in_outputs_or_logs(project, server):
    """The key is in no log line, error or meta.json; an answer is stored as the server gave it, even one
    that (from a hostile server: the model never sees the key) repeats it."""
    make_numbers(project, 12)
    echo = f"Question: is {KEY} shown?\nAnswer: no."
    server.responder = lambda body, n: (
        Reply.status(400, body={"error": {"message": f"key {KEY} rejected"}}) if n % 4 == 0 else
        Reply.ok(echo) if n % 4 == 1 else Reply.ok("nothing here"))
    code, out = run(["--name", "Numbers.numbers", "-v", "--repairs", "0"], server=server)  # n % 4 counts requests
    assert code == 0
    assert KEY not in out
    folder = project / "output" / "Numbers" / "v1"
    for path in folder.iterdir():
        if path.name != "pairs.jsonl":
            assert KEY not in path.read_text(encoding="utf-8"), path
    assert "***" in (folder / "errors.jsonl").read_text()
    assert sum(r["raw"] == echo for r in lines(folder / "pairs.jsonl")) == 3


async def test_429_pauses_every_worker(project, server):
    """After a 429 with a Retry-After, no worker sends anything until that time has passed.

    Time is a ManualClock, the order is set by gates: four requests in flight, then q2's 429
    goes back while the other three replies are held; once the engine has seen it (q2's retry
    sleeps), those three are answered, their workers queue on the limiter, and nothing reaches
    the server until the test moves the clock.
    """
    make_numbers(project, 12)
    clock = ManualClock()
    first, rest = Gate(), Gate()
    arrivals: list[tuple[int, float]] = []

    def responder(body, n):
        arrivals.append((n, clock.now))
        if n == 2:
            return Reply.status(429, headers={"retry-after-ms": "400"}).after(first)
        reply = Reply.ok("Question: a?\nAnswer: b.")
        return reply.after(rest) if n < 4 else reply

    server.responder = responder
    job = asyncio.create_task(run_on(clock, server, name="Numbers.numbers", num_threads=4))
    try:
        assert await asyncio.to_thread(server.wait_for, lambda: server.in_flight == 4, 10)
        first.open()
        await clock.asleep(1)  # q2's retry waits its Retry-After: the 429 has been seen
        assert clock.slept == [0.4]
        rest.open()
        try:
            await clock.asleep(2)  # ...and the first worker free again waits on the paused limiter
        except asyncio.TimeoutError:
            raise AssertionError(f"no worker waited on the limiter; {server.request_count} requests sent") from None
        assert await asyncio.to_thread(server.wait_for, lambda: server.in_flight == 0, 10)
        assert server.request_count == 4, "a request went out during the pause"
        clock.advance(0.4)
        clock.run_free()
        result = await asyncio.wait_for(job, 30)
    finally:
        first.open()
        rest.open()
        clock.run_free()
        if not job.done():
            job.cancel()
    assert result.status == "complete"
    assert [t for n, t in arrivals if n < 4] == [1000.0] * 4
    assert all(t >= 1000.4 - 1e-9 for n, t in arrivals if n >= 4)
    assert len(arrivals) == 13  # 12 queries, q2 twice
    assert len(settled(result.folder)["pairs"]) == 12


def test_request_too_large_for_the_budget_is_an_item_error(project, server):
    make_numbers(project, 2)
    code, out = run(["--name", "Numbers.numbers", "--tpm", "500", "--max_tokens", "600"], server=server)
    assert code == 0
    errors = lines(project / "output" / "Numbers" / "v1" / "errors.jsonl")
    assert {e["kind"] for e in errors} == {"too_large"} and len(errors) == 2
    assert server.requests == []


async def test_rate_limit_headers_are_followed(project, server):
    make_numbers(project, 6)
    headers = {"x-ratelimit-limit-requests": "120", "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-limit-tokens": "1000000", "x-ratelimit-remaining-tokens": "999000"}
    clock = ManualClock()
    clock.run_free()  # one worker: every wait is the limiter's, and the clock moves by exactly it
    arrivals = []

    def responder(body, n):
        arrivals.append(clock.now)
        return Reply.ok("Question: a?\nAnswer: b.", headers=headers)

    server.responder = responder
    result = await asyncio.wait_for(run_on(clock, server, name="Numbers.numbers", num_threads=1), 30)
    assert result.status == "complete"
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert gaps == [pytest.approx(0.5)] * 5  # 120 rpm learnt from headers, remaining 0: one every 0.5 s


def test_malformed_item_stops_with_the_plugin_and_item_named(project, server):
    make_numbers(project, 3)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text().replace(
        'yield {"id"', 'yield {"sentences": "x"} if i == 2 else {"id"'))
    code, out = run(["--name", "Numbers.numbers"], server=server)
    assert code == 2
    assert "numbers.py" in out and "item 3" in out and "has no 'id'" in out  # counted from 1
    assert "q00002" not in {query_id(r.body) for r in server.requests}
    plugin.write_text(plugin.read_text().replace('yield {"sentences": "x"} if i == 2 else {"id"', 'yield {"id"'))
    plugins._loaded.clear()
    assert run(["--name", "Numbers.numbers"], server=server)[0] == 0  # fixed: the rerun finishes the rest
    assert sorted(settled(project / "output" / "Numbers" / "v1")["pairs"]) == ["q00000", "q00001", "q00002"]


def test_reparse_uses_the_current_parser_without_requests(project, server):
    make_numbers(project, 4)
    server.responder = lambda body, n: Reply.ok(f"Ask >> what is {query_id(body)}?\nSay >> a ball.")
    assert run(["--name", "Numbers.numbers"], server=server)[0] == 0
    folder = project / "output" / "Numbers" / "v1"
    assert len(settled(folder)["invalid"]) == 4
    sent = len(server.requests)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text() + '''
    def parse_response(self, text, finish_reason):
        from syphus.parse import parse_pairs
        return parse_pairs(text.replace("Ask >>", "Question:").replace("Say >>", "Answer:"), finish_reason)
''')
    plugins._loaded.clear()
    code, out = run(["--name", "Numbers.numbers", "--reparse"], server=server)
    assert code == 0, out
    assert len(server.requests) == sent
    s = settled(folder)
    assert len(s["pairs"]) == 4 and s["invalid"] == []
    assert lines(folder / "pairs.jsonl")[0]["pairs"][0]["answer"] == "a ball."


def test_torn_last_line_is_repaired_on_restart(project, server):
    make_numbers(project, 5)
    assert run(["--name", "Numbers.numbers", "--slice_end", "3"], server=server)[0] == 0
    folder = project / "output" / "Numbers" / "v1"
    with (folder / "pairs.jsonl").open("a") as f:
        f.write('{"id": "q00004", "pairs": [{"instr')
    code, out = run(["--name", "Numbers.numbers"], server=server)
    assert code == 0, out
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(5)]
    assert (folder / "pairs.jsonl.torn").read_text().startswith('{"id": "q00004"')


def test_slice_and_seeded_random_sample(project, server):
    make_numbers(project, 20)
    assert run(["--name", "Numbers.numbers", "--slice_start", "5", "--slice_end", "8"], server=server)[0] == 0
    assert sorted(query_id(r.body) for r in server.requests) == ["q00005", "q00006", "q00007"]
    picks = []
    for version in ("a", "b"):
        n = len(server.requests)
        run(["--name", "Numbers.numbers", "--random_sample", "--seed", "3", "--slice_end", "4",
             "--dataset_version", version, "--num_threads", "1"], server=server)
        picks.append([query_id(r.body) for r in server.requests[n:]])
    assert picks[0] == picks[1] and len(picks[0]) == 4 and picks[0] != [f"q{i:05d}" for i in range(4)]


def test_azure_with_the_original_environment(project, server):
    make_numbers(project, 2)
    env = {"OPENAI_API_TYPE": "azure", "OPENAI_API_BASE": server.root_url, "OPENAI_API_VERSION": "2023-03-15-preview",
           "OPENAI_API_ENGINE": "chatgpt0301", "OPENAI_API_KEY": KEY}
    code, out = run(["--name", "Numbers.numbers"], env=env)
    assert code == 0, out
    r = server.requests[0]
    assert r.path == "/openai/deployments/chatgpt0301/chat/completions"
    assert r.query["api-version"] == "2023-03-15-preview"
    assert r.headers["api-key"] == KEY and "authorization" not in r.headers


def test_num_threads_bounds_requests_in_flight(project, server):
    make_numbers(project, 40)
    gate = Gate(opens_at=6, timeout=10)  # the first replies wait until six requests are in flight at once
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.").after(gate)
    assert run(["--name", "Numbers.numbers", "--num_threads", "6"], server=server)[0] == 0
    assert gate.held == 6 and server.peak_in_flight == 6
    assert Counter(server.status_counts)[200] == 40


def test_online_requests_go_through_the_proxy_of_the_environment(project, server, monkeypatch):
    """HTTP_PROXY is read once, when the session opens (not in a thread for every request); the endpoint's
    host does not resolve, so only requests sent through the proxy (the fake) arrive. NO_PROXY is honoured."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.root_url)
    code, out = run(["--name", "Example.example", "--slice_end", "2", "--base_url", "http://chat-api.invalid/v1"])
    assert code == 0, out
    assert {r.headers["host"] for r in server.requests} == {"chat-api.invalid"} and len(server.requests) == 2
    monkeypatch.setenv("NO_PROXY", "chat-api.invalid")
    code, out = run(["--name", "Example.example", "--dataset_version", "v2", "--slice_end", "1", "--max_attempts", "1",
                     "--base_url", "http://chat-api.invalid/v1"])
    errors = lines(project / "output" / "Example" / "v2" / "errors.jsonl")
    assert [e["kind"] for e in errors] == ["connection"] and len(server.requests) == 2  # straight to no host
