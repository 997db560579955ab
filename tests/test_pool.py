"""Many endpoints, one run: routing by capacity, a 429 or a dead endpoint on one, removal, keys, figures.

Routing and the circuit are tested on a fake clock (nothing sleeps); whole runs go through two or
three fake OpenAI servers on real sockets, with a pool in a YAML config.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections import Counter

import pytest
import yaml

from syphus.cli import main
from syphus.engine.limits import RateLimiter
from syphus.engine.pool import COOLING, Member, Pool
from tests.fakebatch import FakeBatchAPI
from tests.fakeserver import FakeOpenAI, Gate, Reply
from tests.helpers import ManualClock, lines, make_numbers, query_id, settled

SECRET_A, SECRET_B = "sk-pool-secret-aaaa-1111", "sk-pool-secret-bbbb-2222"
ENV = {"KEY_A": SECRET_A, "KEY_B": SECRET_B}


def write_pool(project, *servers, extra: dict | None = None, **entry_extra) -> str:
    entries = []
    for name, server in zip("ab", servers):
        entry = {"name": name, "kind": "compatible", "base_url": server.base_url, "model": f"model-{name}",
                 "key_env": f"KEY_{name.upper()}", **entry_extra.get(name, {})}
        entries.append(entry)
    data = {"endpoints": entries, "retry": {"initial_wait": 0.01, "max_wait": 0.05, "cool_seconds": 30},
            **(extra or {})}
    (project / "pool.yaml").write_text(yaml.safe_dump(data))
    return "pool.yaml"


def run(argv, env=ENV):
    out = io.StringIO()
    code = main(["--quiet"] + list(argv), env=dict(env), stream=out)
    return code, out.getvalue()


def folder_of(project, name="Numbers"):
    return project / "output" / name / "v1"


def every_id_once(folder) -> list[str]:
    ids = [r["id"] for name in ("pairs", "invalid", "errors") for r in lines(folder / f"{name}.jsonl")]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    return sorted(ids)


def meta(folder) -> dict:
    return json.loads((folder / "meta.json").read_text())


# --- routing and the circuit, on a fake clock ----------------------------------------------------------

def test_queries_go_where_they_fit_soonest_in_proportion_to_capacity():
    clock = ManualClock(0.0, free=True)
    fast = Member("fast", None, RateLimiter(rpm=600, clock=clock.clock, sleep=clock.sleep))
    slow = Member("slow", None, RateLimiter(rpm=60, clock=clock.clock, sleep=clock.sleep))
    pool = Pool([fast, slow], clock=clock.clock, sleep=clock.sleep)

    async def send(n):
        for _ in range(n):
            m = await pool.take(100)
            pool.done(m, ok=True)

    asyncio.run(send(330))
    assert fast.requests + slow.requests == 330
    # 10 a second against 1 a second: the slow one takes about a tenth, and the run takes ~30 s, not 300
    assert 25 <= slow.requests <= 35 and clock.now < 32


def test_ties_go_by_weight_then_by_what_is_in_flight():
    a = Member("a", None, RateLimiter(), weight=1)
    b = Member("b", None, RateLimiter(), weight=3)
    pool = Pool([a, b])
    counts = Counter()

    async def hold(n):
        for _ in range(n):
            counts[(await pool.take(10)).name] += 1  # none returned: in flight piles up

    asyncio.run(hold(8))
    assert counts == {"a": 2, "b": 6}


def test_a_429_pauses_only_its_endpoint():
    clock = ManualClock(0.0, free=True)
    a = Member("a", None, RateLimiter(rpm=600, clock=clock.clock, sleep=clock.sleep))
    b = Member("b", None, RateLimiter(rpm=600, clock=clock.clock, sleep=clock.sleep))
    pool = Pool([a, b], clock=clock.clock, sleep=clock.sleep)
    a.limiter.pause(30)
    assert pool.alternative(a)
    chosen = [pool.choose(10).name for _ in range(3)]
    assert chosen == ["b", "b", "b"] and b.limiter.ready_in(10) == 0.0


def test_an_endpoint_that_keeps_failing_cools_down_then_comes_back():
    clock = ManualClock(0.0, free=True)
    a = Member("a", None, RateLimiter(clock=clock.clock, sleep=clock.sleep))
    b = Member("b", None, RateLimiter(clock=clock.clock, sleep=clock.sleep))
    pool = Pool([a, b], cool_after=3, cool_seconds=10, cool_max_seconds=40, clock=clock.clock, sleep=clock.sleep)

    async def scenario():
        for _ in range(3):
            a.in_flight += 1
            pool.done(a, ok=False, kind="connection", reason="refused")
        assert a.state == COOLING and a.cool_until == 10
        assert pool.choose(10) is b and not pool.alternative(b)
        clock.now = 10.5  # cooled down: one probe may go
        m = await pool.take(10, avoid=b)
        assert m is a and a.probing
        assert pool._wait(a, 10, clock.now) == float("inf")  # nothing else while the probe is out
        pool.done(a, ok=False, kind="timeout", reason="no answer")  # the probe failed: twice as long
        assert a.state == COOLING and a.cool_for == 20 and a.cool_until == pytest.approx(30.5)
        clock.now = 31
        m = await pool.take(10, avoid=b)
        pool.done(m, ok=True)
        assert a.state == "active" and a.failures == 0 and a.cool_for == 0

    asyncio.run(scenario())


def test_a_single_endpoint_has_no_circuit():
    a = Member("a", None, RateLimiter())
    pool = Pool([a])
    for _ in range(10):
        a.in_flight += 1
        pool.done(a, ok=False, kind="server_error")
    assert a.state == "active" and not pool.circuit


# --- whole runs over several fake servers ------------------------------------------------------------------

def test_a_pool_run_spreads_queries_and_records_each_endpoint(project):
    make_numbers(project, 40)
    with FakeOpenAI() as a, FakeOpenAI() as b:
        cfg = write_pool(project, a, b)
        code, out = run(["--name", "Numbers", "--config", cfg, "--num_threads", "8"])
        assert code == 0, out
        assert a.request_count > 0 and b.request_count > 0
        assert a.request_count + b.request_count == 40
        assert all(r.headers["authorization"] == f"Bearer {SECRET_A}" for r in a.requests)
        assert all(r.headers["authorization"] == f"Bearer {SECRET_B}" for r in b.requests)
        assert {r.body["model"] for r in a.requests} == {"model-a"}
    folder = folder_of(project)
    assert every_id_once(folder) == [f"q{i:05d}" for i in range(40)]
    records = lines(folder / "pairs.jsonl")
    assert Counter(r["endpoint"] for r in records) == {"a": a.request_count, "b": b.request_count}
    assert {r["model"] for r in records if r["endpoint"] == "a"} == {"model-a"}
    figures = {e["name"]: e for e in meta(folder)["endpoints"]}
    assert figures["a"]["requests"] == a.request_count and figures["a"]["state"] == "active"
    assert figures["b"]["prompt_tokens"] == sum(r["usage"]["prompt_tokens"] for r in records if r["endpoint"] == "b")
    assert figures["a"]["url"] == a.base_url + "/chat/completions" and figures["a"]["model"] == "model-a"


def test_keys_come_from_the_named_variables_and_appear_in_no_output(project):
    make_numbers(project, 6)
    with FakeOpenAI() as a, FakeOpenAI() as b:
        a.responder = lambda body, n: Reply.status(401, body={"error": {"message": f"bad key {SECRET_A}"}})
        cfg = write_pool(project, a, b)
        code, out = run(["--name", "Numbers", "--config", cfg, "--verbose"])
        assert code == 0, out
    text = out + "".join(p.read_text() for p in folder_of(project).iterdir() if p.is_file())
    assert SECRET_A not in text and SECRET_B not in text
    code, out = run(["--name", "Numbers", "--config", cfg], env={"KEY_A": SECRET_A})
    assert code == 2 and "KEY_B" in out and "not set" in out and SECRET_A not in out


def test_an_endpoint_whose_key_is_refused_is_removed_and_the_others_carry_on(project):
    make_numbers(project, 12)
    with FakeOpenAI() as a, FakeOpenAI() as b:
        a.responder = lambda body, n: Reply.status(401)
        cfg = write_pool(project, a, b)
        code, out = run(["--name", "Numbers", "--config", cfg, "--num_threads", "4"])
        assert code == 0, out
        assert a.request_count <= 4  # what was sent before the first refusal came back
    assert "endpoint a removed for this run" in out
    folder = folder_of(project)
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(12)]
    assert all(r["endpoint"] == "b" for r in lines(folder / "pairs.jsonl"))
    figures = {e["name"]: e for e in meta(folder)["endpoints"]}
    assert figures["a"]["state"] == "removed" and "HTTP 401" in figures["a"]["reason"]
    assert "endpoint a reads its key from KEY_A" in figures["a"]["reason"]


def test_when_every_endpoint_is_refused_the_run_stops_resumably(project):
    make_numbers(project, 5)
    with FakeOpenAI() as a, FakeOpenAI() as b:
        a.responder = b.responder = lambda body, n: Reply.status(403)
        code, out = run(["--name", "Numbers", "--config", write_pool(project, a, b)])
    assert code == 3 and "HTTP 403" in out
    assert settled(folder_of(project)) == {"pairs": [], "invalid": [], "errors": []}


def test_a_429_on_one_endpoint_sends_the_query_to_the_other_at_once(project):
    make_numbers(project, 10)
    with FakeOpenAI() as a, FakeOpenAI() as b:
        a.responder = lambda body, n: Reply.status(429, headers={"retry-after": "600"})
        cfg = write_pool(project, a, b)
        code, out = run(["--name", "Numbers", "--config", cfg, "--num_threads", "2"])
        assert code == 0, out
        assert a.request_count <= 2 and b.request_count == 10  # a waits its 600 s alone; nobody waits for it
    folder = folder_of(project)
    assert all(r["endpoint"] == "b" for r in lines(folder / "pairs.jsonl"))
    figures = {e["name"]: e for e in meta(folder)["endpoints"]}
    assert figures["a"]["rate_limited"] == a.request_count


def test_an_endpoint_that_dies_mid_reply_loses_nothing_and_pays_nothing_twice(project):
    """Server a holds its replies, then is shut down with them on the wire: they settle on b, once."""
    make_numbers(project, 30)
    gate = Gate()
    with FakeOpenAI() as a, FakeOpenAI() as b:
        a.responder = lambda body, n: Reply.ok("Question: q?\nAnswer: a.").after(gate)
        cfg = write_pool(project, a, b, extra={"retry": {"initial_wait": 0.01, "max_wait": 0.05, "cool_after": 2,
                                                         "cool_seconds": 600}})
        result = {}
        thread = threading.Thread(target=lambda: result.update(zip(("code", "out"), run(
            ["--name", "Numbers", "--config", cfg, "--num_threads", "4", "--reply", "text"]))))
        thread.start()
        try:
            assert a.wait_for(lambda: a.in_flight >= 2, timeout=30), a.stats()
            held = a.in_flight
            a.close()  # the server dies with replies owed
        finally:
            gate.open()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert result["code"] == 0, result["out"]
    folder = folder_of(project)
    assert every_id_once(folder) == [f"q{i:05d}" for i in range(30)]
    records = lines(folder / "pairs.jsonl")
    moved = [r for r in records if r["attempts"] > 1]
    assert len(moved) >= held and all(r["endpoint"] == "b" for r in moved)
    assert Counter(r["endpoint"] for r in records)["a"] == 0  # a answered nothing: it died first
    figures = {e["name"]: e for e in meta(folder)["endpoints"]}
    assert figures["a"]["state"] == "cooling" and figures["a"]["errors"] >= held


def test_endpoint_flag_picks_from_the_pool(project):
    make_numbers(project, 4)
    with FakeOpenAI() as a, FakeOpenAI() as b:
        cfg = write_pool(project, a, b)
        code, out = run(["--name", "Numbers", "--config", cfg, "--endpoint", "b"])
        assert code == 0, out
        assert a.request_count == 0 and b.request_count == 4
        code, out = run(["--name", "Numbers", "--config", cfg, "--endpoint", "c"])
        assert code == 2 and "no such endpoint in the pool (the pool has a, b)" in out


def test_per_endpoint_prices_and_one_budget_across_the_pool(project):
    make_numbers(project, 20)
    (project / "prices.yaml").write_text(yaml.safe_dump({"model-a": {"input": 1.0, "output": 1.0},
                                                         "model-b": {"input": 100.0, "output": 100.0}}))
    with FakeOpenAI() as a, FakeOpenAI() as b:
        cfg = write_pool(project, a, b, extra={"cost": {"pricing": "prices.yaml"}})
        code, out = run(["--name", "Numbers", "--config", cfg, "--max_tokens", "50", "--max-cost", "0.05"])
    folder = folder_of(project)
    m = meta(folder)
    figures = {e["name"]: e for e in m["endpoints"]}
    spent = m["cost"]["spent_usd"]
    assert spent <= 0.05 + 1e-9
    assert figures["a"]["cost_usd"] + figures["b"]["cost_usd"] == pytest.approx(spent, abs=1e-6)
    records = {r["id"]: r for r in lines(folder / "pairs.jsonl")}
    cost_b = sum((r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]) * 100 / 1e6
                 for r in records.values() if r["endpoint"] == "b")
    assert figures["b"]["cost_usd"] == pytest.approx(cost_b, abs=1e-6)
    code, out = run(["--name", "Numbers", "--config", cfg, "--max-cost", "1", "--pricing", "missing.yaml"])
    assert code == 2


def test_dry_run_projects_time_from_the_summed_capacity(project):
    make_numbers(project, 600)
    with FakeOpenAI() as a, FakeOpenAI() as b:
        cfg = write_pool(project, a, b, a={"rpm": 100}, b={"rpm": 200})
        code, out = run(["--name", "Numbers", "--config", cfg, "--dry-run"])
        assert a.request_count == b.request_count == 0
    assert code == 0, out
    assert "~2.0 minutes (300.0 requests/minute)" in out and "a 100.0/min, b 200.0/min" in out


def test_batch_mode_submits_to_one_endpoint_of_the_pool(project):
    make_numbers(project, 3)
    with FakeBatchAPI() as a, FakeBatchAPI() as b:
        cfg = write_pool(project, a, b, extra={"batch": {"poll_interval": 0.01}})
        code, out = run(["--name", "Numbers", "--config", cfg, "--mode", "batch", "--endpoint", "b"])
        assert code == 0, out
        assert a.uploads == [] and len(b.uploads) == 1
    assert len(settled(folder_of(project))["pairs"]) == 3
    assert all(r["endpoint"] == "b" for r in lines(folder_of(project) / "pairs.jsonl"))


def test_the_example_pool_config_is_valid_and_names_keys_only():
    from syphus.config import load_config
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "configs" / "pool.yaml")
    assert [e.name for e in cfg.endpoints] == ["east", "west", "gpu1"]
    assert all(e.key_env is None or e.key_env.isupper() for e in cfg.endpoints)


def test_translate_on_a_pool_never_prints_a_key_the_server_echoes(project):
    """The pool's keys are known only once the config is read; translate's own messages redact them too."""
    from tests.conftest import ROOT

    (project / "prompts" / "translate.json").write_text((ROOT / "prompts" / "translate.json").read_text())
    (project / "DC_instructions.json").write_text(json.dumps({"meta": {}, "data": {
        "DC_INS_00001": {"instruction": "What is it?", "answer": "A dog.", "image_ids": [], "rel_ins_ids": []}}}))
    with FakeOpenAI() as a:
        a.responder = lambda body, n: Reply.status(401, body={"error": {"message": f"bad key {SECRET_A}"}})
        cfg = write_pool(project, a)
        out = io.StringIO()
        code = main(["translate", "DC_instructions.json", "--config", cfg, "--quiet", "--verbose"], env=ENV,
                    stream=out)
    assert code == 3 and "HTTP 401" in out.getvalue()
    assert SECRET_A not in out.getvalue() and "***" in out.getvalue()
