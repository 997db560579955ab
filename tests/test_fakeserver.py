"""Tests for the fake OpenAI server in tests/fakeserver.py."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.fakeserver import FakeOpenAI, Gate, Reply, format_duration
from tests.helpers import ManualClock, SkewLoop

BODY = {"model": "gpt-test", "messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Item 42: a red bicycle leaning on a wall"}]}
TRANSPORT_HEADERS = {"content-type", "content-length", "date", "server"}


async def _post(session: aiohttp.ClientSession, url: str, body: dict = BODY, **kw):
    async with session.post(url, json=body, **kw) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


def _run(coro):
    return asyncio.run(coro)


def test_ok_reply_shape_and_recording():
    async def go(server):
        async with aiohttp.ClientSession() as s:
            first = await _post(s, server.base_url + "/chat/completions",
                                headers={"Authorization": "Bearer sk-x"})
            second = await _post(s, server.root_url +
                                 "/openai/deployments/dep1/chat/completions?api-version=2024-06-01")
            return first, second

    with FakeOpenAI() as server:
        server.enqueue(Reply.ok("Question: a?\nAnswer: b.", usage={"prompt_tokens": 1}))
        (st1, _, raw1), (st2, _, raw2) = _run(go(server))
        assert server.base_url == server.root_url + "/v1"
        assert st1 == st2 == 200
        d1, d2 = json.loads(raw1), json.loads(raw2)
        assert d1["id"] == "chatcmpl-0" and d1["object"] == "chat.completion"
        assert d1["model"] == "gpt-test" and isinstance(d1["created"], int)
        assert d1["choices"] == [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "Question: a?\nAnswer: b."}}]
        assert d1["usage"] == {"prompt_tokens": 1}
        # Default responder: two Q/A pairs about the last user message, computed usage.
        text = d2["choices"][0]["message"]["content"]
        assert text.count("Question: ") == 2 and text.count("Answer: ") == 2
        assert "Item 42: a red bicyc" in text
        chars = len("Be brief.") + len(BODY["messages"][1]["content"])
        assert d2["usage"]["prompt_tokens"] == -(-chars // 4)
        usage = d2["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        reqs = server.requests
        assert [r.path for r in reqs] == ["/v1/chat/completions",
                                          "/openai/deployments/dep1/chat/completions"]
        assert reqs[0].headers["authorization"] == "Bearer sk-x"
        assert reqs[1].query == {"api-version": "2024-06-01"} and reqs[1].body == BODY
        assert server.status_counts[200] == 2


def test_responder_null_content_models_404_and_stats():
    with FakeOpenAI() as server:
        server.responder = lambda body, n: Reply.ok(None if n == 0 else f"n={n}", model="m")
        url = server.base_url + "/chat/completions"
        for expected in (None, "n=1"):
            req = urllib.request.Request(url, data=json.dumps(BODY).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as resp:
                data = json.load(resp)
            assert data["choices"][0]["message"]["content"] == expected and data["model"] == "m"
        with urllib.request.urlopen(server.base_url + "/models") as resp:
            assert json.load(resp)["data"][0]["object"] == "model"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.root_url + "/nope")
        assert err.value.code == 404 and "error" in json.load(err.value)
        with urllib.request.urlopen(server.root_url + "/stats") as resp:
            stats = json.load(resp)
        assert stats == {"status_counts": {"200": 3, "404": 1}, "peak_in_flight": 1,
                         "requests": 4, "tokens_admitted": stats["tokens_admitted"]}
        assert stats["tokens_admitted"] > 0


def test_scripted_status_headers_exact_and_bodies():
    given = {"retry-after": "7", "x-custom": "yes"}
    quota = {"error": {"code": "insufficient_quota", "message": "q", "type": "insufficient_quota"}}

    async def go(server):
        async with aiohttp.ClientSession() as s:
            return [await _post(s, server.base_url + "/chat/completions") for _ in range(3)]

    with FakeOpenAI(rpm=1000) as server:  # limits on, yet scripted headers stay exact
        server.enqueue(Reply.status(429, headers=given), Reply.status(429, body=quota),
                       Reply.status(401))
        (s1, h1, b1), (s2, _, b2), (s3, _, b3) = _run(go(server))
    assert (s1, s2, s3) == (429, 429, 401)
    assert {k: v for k, v in h1.items() if k not in TRANSPORT_HEADERS} == given
    assert h1["content-type"].startswith("application/json")
    assert json.loads(b1)["error"]["type"] == "rate_limit_exceeded"
    assert json.loads(b2) == quota
    assert json.loads(b3)["error"]["type"] == "invalid_api_key"


def test_malformed_body_verbatim():
    raw = b'{"choices": [ \x00 not json'

    async def go(server):
        async with aiohttp.ClientSession() as s:
            return [await _post(s, server.base_url + "/chat/completions") for _ in range(2)]

    with FakeOpenAI() as server:
        server.enqueue(Reply.malformed(raw), Reply.malformed(b"<html>", 502, "text/html"))
        (s1, h1, b1), (s2, h2, b2) = _run(go(server))
    assert (s1, b1, h1["content-type"]) == (200, raw, "application/json")
    assert (s2, b2, h2["content-type"]) == (502, b"<html>", "text/html")


def test_drop_causes_client_error():
    async def go(server):
        async with aiohttp.ClientSession() as s:
            with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                                aiohttp.ClientConnectionError)):
                await _post(s, server.base_url + "/chat/completions")
            return await _post(s, server.base_url + "/chat/completions")  # server still fine

    with FakeOpenAI() as server:
        server.enqueue(Reply.drop())
        status, _, _ = _run(go(server))
        assert status == 200
        assert server.status_counts == {"drop": 1, 200: 1}


def test_hang_exceeds_client_timeout_without_blocking_others():
    """The client's 30 s timeout cuts the hang: its loop's clock jumps past it once the other is answered."""
    async def go(server):
        async with aiohttp.ClientSession() as s:
            url = server.base_url + "/chat/completions"
            hung = asyncio.ensure_future(_post(s, url, timeout=aiohttp.ClientTimeout(total=30)))
            assert await asyncio.to_thread(server.wait_for, lambda: server.hanging == 1, 5)
            other = await _post(s, url)  # answered while the first one hangs
            assert not hung.done() and server.hanging == 1
            asyncio.get_running_loop().advance(31)
            with pytest.raises(asyncio.TimeoutError):
                await hung
            return other

    with FakeOpenAI() as server:
        server.enqueue(Reply.hang(3600))
        with asyncio.Runner(loop_factory=SkewLoop) as runner:
            assert runner.run(go(server))[0] == 200
        # "hang" is counted only for a hang cut short by the client: the handler was cancelled, not waited out
        assert server.wait_for(lambda: server.status_counts["hang"] == 1, timeout=30)
        assert server.in_flight == 0 and server.hanging == 0
    assert server.peak_in_flight == 2


def test_peak_in_flight_counts_concurrent_requests():
    async def go(server):
        async with aiohttp.ClientSession() as s:
            url = server.base_url + "/chat/completions"
            return await asyncio.gather(*(_post(s, url) for _ in range(5)))

    gate = Gate(opens_at=5, timeout=10)  # held until all five are in flight at once
    with FakeOpenAI() as server:
        server.enqueue(*[Reply.ok("x").after(gate)] * 5)
        results = _run(go(server))
    assert [r[0] for r in results] == [200] * 5
    assert server.peak_in_flight == 5 and gate.held == 5


def test_a_gate_holds_replies_until_opened_from_another_thread():
    async def go(server, gate):
        async with aiohttp.ClientSession() as s:
            url = server.base_url + "/chat/completions"
            held = [asyncio.ensure_future(_post(s, url)) for _ in range(3)]
            assert await asyncio.to_thread(server.wait_for, lambda: server.in_flight == 3, 5)
            assert not any(task.done() for task in held) and server.status_counts == {}
            gate.open()
            return await asyncio.gather(*held), await _post(s, url)

    gate = Gate()
    with FakeOpenAI() as server:
        server.responder = lambda body, n: Reply.ok("x").after(gate)
        held, after = _run(go(server, gate))
    assert [r[0] for r in held] == [200] * 3 and after[0] == 200
    assert gate.held == 3 and gate.is_open  # the one sent after opening passed at once


def test_wait_for_gives_up_after_its_timeout():
    with FakeOpenAI() as server:
        assert server.wait_for(lambda: server.request_count == 0, timeout=0)
        assert not server.wait_for(lambda: server.request_count == 1, timeout=0.01)


def _burst(enforce: str):
    async def go(server):
        async with aiohttp.ClientSession() as s:
            url = server.base_url + "/chat/completions"
            return await asyncio.gather(*(_post(s, url) for _ in range(20)))

    frozen = ManualClock()  # no refill mid-burst however slow the machine: the counts are exact
    with FakeOpenAI(rpm=600, tpm=1_000_000, enforce=enforce, clock=frozen.clock) as server:
        results = _run(go(server))
        counts = server.status_counts
    return results, counts


def test_second_enforcement_admits_one_seconds_worth():
    results, counts = _burst("second")
    assert counts == {200: 10, 429: 10}
    ok = next(h for st, h, _ in results if st == 200)
    limited = next((st, h, b) for st, h, b in results if st == 429)
    for h in (ok, limited[1]):
        assert h["x-ratelimit-limit-requests"] == "600"
        assert h["x-ratelimit-limit-tokens"] == "1000000"
        assert int(h["x-ratelimit-remaining-requests"]) >= 580  # per-minute view
        assert h["x-ratelimit-reset-requests"].endswith("s")
        assert "x-ratelimit-remaining-tokens" in h and "x-ratelimit-reset-tokens" in h
    assert limited[1]["retry-after"] == "1"
    assert int(limited[1]["retry-after-ms"]) == 100  # one request at 10 a second
    assert json.loads(limited[2])["error"]["code"] == "rate_limit_exceeded"
    assert "retry-after" not in ok


def test_minute_enforcement_admits_whole_burst():
    results, counts = _burst("minute")
    assert counts == {200: 20}
    remaining = sorted(int(h["x-ratelimit-remaining-requests"]) for _, h, _ in results)
    assert remaining[0] == 580 and remaining[-1] <= 600


def test_format_duration():
    assert [format_duration(s) for s in (0, 0.12, 1, 1.5, 360, 3723.25)] == [
        "0s", "120ms", "1s", "1.5s", "6m0s", "1h2m3.25s"]


def test_cli_prints_listening_serves_and_exits_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeserver", "--port", "0", "--latency", "0.05",
         "--rpm", "500", "--tpm", "200000", "--enforce", "second"],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening http://127.0.0.1:")
        root = line.split(" ", 1)[1]
        req = urllib.request.Request(root + "/v1/chat/completions", data=json.dumps(BODY).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200 and resp.headers["x-ratelimit-limit-requests"] == "500"
            assert json.load(resp)["object"] == "chat.completion"
        with urllib.request.urlopen(root + "/stats", timeout=5) as resp:
            assert json.load(resp)["requests"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_count_schema_puts_the_reply_schema_in_the_tokens_counted():
    schema = {"type": "object", "properties": {"pairs": {"type": "array", "items": {"type": "string"}}}}
    body = {**BODY, "max_tokens": 10,
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}}
    chars = len("Be brief.") + len(BODY["messages"][1]["content"])

    async def go(server):
        async with aiohttp.ClientSession() as s:
            return await _post(s, server.base_url + "/chat/completions", body)

    for count, extra in ((False, 0), (True, len(json.dumps(schema)))):
        with FakeOpenAI(tpm=100_000, count_schema=count) as server:
            status, headers, raw = _run(go(server))
            assert status == 200
            assert json.loads(raw)["usage"]["prompt_tokens"] == -(-(chars + extra) // 4)
            assert server.stats()["tokens_admitted"] == -(-(chars + extra) // 4) + 10
